package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/JohannesKaufmann/html-to-markdown/v2/converter"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/base"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/commonmark"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/strikethrough"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/table"
	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"

	"github.com/kelpie-ai/kelpie/toolexec"
)

// Fetch bounds and defaults.
const (
	// DefaultFetchTimeout bounds one fetch: connecting, redirects, headers
	// and body together.
	DefaultFetchTimeout = 30 * time.Second
	// DefaultBodyBytesMax bounds the bytes of a response body that are
	// read (after decompression); the rest is cut.
	DefaultBodyBytesMax = 5 << 20
	// DefaultOutputCharsMax bounds the characters fetch_webpage returns
	// (Letta's default return_char_limit).
	DefaultOutputCharsMax = 50000
	// RedirectsMax bounds the redirects one fetch follows.
	RedirectsMax = 5
	// DefaultUserAgent is the User-Agent of fetches.
	DefaultUserAgent = "Kelpie-fetch_webpage/1.0 (+https://github.com/kelpie-ai/kelpie)"

	// dialTimeout bounds one connection attempt; tlsHandshakeTimeout the
	// TLS handshake.
	dialTimeout         = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	// dialAddrsMax bounds the addresses of one host a connection tries.
	dialAddrsMax = 8
	// responseHeaderBytesMax bounds a response's header.
	responseHeaderBytesMax = 64 << 10
	// urlBytesMax bounds the url argument.
	urlBytesMax = 8 << 10
	// sniffBytes is how much of a body content sniffing reads.
	sniffBytes = 512
)

// FetchConfig configures fetch_webpage. Zero values take the defaults.
type FetchConfig struct {
	// AllowPrivate lets fetches reach the addresses Blocked refuses
	// (loopback, private networks, link-local…). Off by default: only an
	// operator who wants agents to read internal services turns it on.
	AllowPrivate bool
	// Timeout bounds one fetch, redirects included (DefaultFetchTimeout).
	Timeout time.Duration
	// BodyBytesMax bounds the body bytes read (DefaultBodyBytesMax).
	BodyBytesMax int64
	// OutputCharsMax bounds the characters returned (DefaultOutputCharsMax).
	OutputCharsMax int
	// UserAgent is sent with every request (DefaultUserAgent).
	UserAgent string
}

// resolver looks up the addresses of a host; *net.Resolver is one.
type resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// dialFunc connects to an address "ip:port".
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Fetcher runs fetch_webpage: an HTTP(S) GET of a public page, returned
// as markdown (HTML) or as it is (plain text, JSON). It implements
// toolexec.Executor and is safe for concurrent use.
type Fetcher struct {
	cfg      FetchConfig
	resolver resolver
	dial     dialFunc
	client   *http.Client
	md       *converter.Converter
}

// NewFetcher returns a Fetcher with cfg, its zero fields set to the
// defaults.
func NewFetcher(cfg FetchConfig) *Fetcher {
	f := &Fetcher{resolver: net.DefaultResolver}
	d := &net.Dialer{Timeout: dialTimeout, Control: f.control}
	f.dial = d.DialContext
	f.init(cfg)
	return f
}

// init sets the defaults and builds the client; the resolver and dial
// function are set before (tests replace them).
func (f *Fetcher) init(cfg FetchConfig) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultFetchTimeout
	}
	if cfg.BodyBytesMax <= 0 {
		cfg.BodyBytesMax = DefaultBodyBytesMax
	}
	if cfg.OutputCharsMax <= 0 {
		cfg.OutputCharsMax = DefaultOutputCharsMax
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	f.cfg = cfg
	f.client = &http.Client{
		Transport: &http.Transport{
			// No proxy: the address check must see the address the
			// connection goes to, not a proxy's.
			Proxy:                  nil,
			DialContext:            f.dialContext,
			TLSHandshakeTimeout:    tlsHandshakeTimeout,
			MaxResponseHeaderBytes: responseHeaderBytesMax,
			MaxIdleConns:           16,
			IdleConnTimeout:        30 * time.Second,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: checkRedirect,
	}
	f.md = converter.NewConverter(converter.WithPlugins(
		base.NewBasePlugin(),
		commonmark.NewCommonmarkPlugin(),
		table.NewTablePlugin(),
		strikethrough.NewStrikethroughPlugin(),
	))
}

// errTooManyRedirects is the redirect bound's error.
var errTooManyRedirects = fmt.Errorf("stopped after %d redirects", RedirectsMax)

// checkRedirect follows at most RedirectsMax redirects, to http and https
// URLs only. Every hop dials through the address check.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > RedirectsMax {
		return errTooManyRedirects
	}
	if s := req.URL.Scheme; s != "http" && s != "https" {
		return fmt.Errorf("a redirect to a %s: URL, which fetch_webpage does not follow", s)
	}
	return nil
}

// dialContext resolves the host itself, refuses blocked addresses (unless
// private addresses are allowed) and dials the first allowed address that
// answers. Because the address checked is the address dialled, a host
// whose DNS answer changes between a check and the connection (DNS
// rebinding) cannot slip through, and redirects are checked hop by hop.
func (f *Fetcher) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", portStr)
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
		host = ""
	} else {
		lookup := "ip"
		switch network {
		case "tcp4":
			lookup = "ip4"
		case "tcp6":
			lookup = "ip6"
		}
		addrs, err = f.resolver.LookupNetIP(ctx, lookup, host)
		if err != nil {
			return nil, err
		}
		addrs = addrs[:min(len(addrs), dialAddrsMax)]
	}
	var refused error
	var lastErr error
	for _, ip := range addrs {
		if !f.cfg.AllowPrivate {
			if reason, blocked := Blocked(ip); blocked {
				if refused == nil {
					refused = &BlockedAddressError{Host: host, Addr: ip, Reason: reason}
				}
				continue
			}
		}
		conn, err := f.dial(ctx, network, netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	switch {
	case lastErr != nil:
		return nil, lastErr
	case refused != nil:
		return nil, refused
	}
	return nil, fmt.Errorf("%s has no addresses", host)
}

// control re-checks the address of every socket the default dialer
// connects, just before the connection is made: a second line behind
// dialContext.
func (f *Fetcher) control(network, address string, _ syscall.RawConn) error {
	if f.cfg.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("web: cannot check the address %q: %w", address, err)
	}
	if reason, blocked := Blocked(ap.Addr()); blocked {
		return &BlockedAddressError{Addr: ap.Addr(), Reason: reason}
	}
	return nil
}

// fetchArgs are fetch_webpage's arguments.
type fetchArgs struct {
	URL string `json:"url"`
	// RequestHeartbeat is the parameter memgpt agents add to every tool;
	// the agent loop reads it, the tool ignores it.
	RequestHeartbeat any `json:"request_heartbeat"`
}

// Run fetches the page named by the call's url argument. A page that
// cannot be fetched or read is a StatusError result saying why; an error
// return means ctx ended the call.
func (f *Fetcher) Run(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
	var args fetchArgs
	if msg := decodeArgs(NameFetchWebpage, call.Arguments, &args); msg != "" {
		return toolexec.Errorf("%s", msg), nil
	}
	u, msg := parseFetchURL(args.URL)
	if msg != "" {
		return toolexec.Errorf("fetch_webpage: %s", msg), nil
	}
	out, err := f.fetch(ctx, u)
	if err != nil {
		if ctx.Err() != nil {
			return toolexec.Result{}, ctx.Err()
		}
		return toolexec.Errorf("fetch_webpage: %s", describeFetchError(u, err, f.cfg.Timeout)), nil
	}
	return toolexec.Result{Status: toolexec.StatusSuccess, Return: out}, nil
}

// parseFetchURL checks the url argument: an absolute http or https URL.
func parseFetchURL(raw string) (*url.URL, string) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		return nil, "the url argument is required (an http:// or https:// URL)"
	case len(raw) > urlBytesMax:
		return nil, fmt.Sprintf("the url is longer than %d bytes", urlBytesMax)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Sprintf("%q is not a valid URL: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Sprintf("%q is not an http:// or https:// URL; only those can be fetched", raw)
	}
	if u.Hostname() == "" {
		return nil, fmt.Sprintf("%q has no host", raw)
	}
	u.Fragment = ""
	return u, ""
}

// fetchError is a failure of the fetch itself, already worded for the
// model.
type fetchError struct{ msg string }

// Error returns the message.
func (e *fetchError) Error() string { return e.msg }

// describeFetchError words a failed fetch for the model.
func describeFetchError(u *url.URL, err error, timeout time.Duration) string {
	var fe *fetchError
	var blocked *BlockedAddressError
	switch {
	case errors.As(err, &fe):
		return fe.msg
	case errors.As(err, &blocked):
		return fmt.Sprintf("refused to fetch %s: %v", u.Redacted(), blocked)
	case errors.Is(err, errTooManyRedirects):
		return fmt.Sprintf("%s: %v; fetch the final URL directly", u.Redacted(), errTooManyRedirects)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%s did not answer within %v", u.Redacted(), timeout)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return fmt.Sprintf("the host %q of %s does not exist", dnsErr.Name, u.Redacted())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Sprintf("GET %s failed: %v", u.Redacted(), err)
}

// content kinds fetch_webpage reads.
const (
	kindHTML = iota + 1
	kindText
	kindJSON
)

// contentKind classifies a media type; 0 means one fetch_webpage does not
// read.
func contentKind(mediaType string) int {
	switch {
	case mediaType == "text/html" || mediaType == "application/xhtml+xml":
		return kindHTML
	case mediaType == "text/plain" || mediaType == "text/markdown":
		return kindText
	case mediaType == "application/json" || mediaType == "text/json" || strings.HasSuffix(mediaType, "+json"):
		return kindJSON
	}
	return 0
}

// fetch GETs u within the time bound and returns the text for the model.
func (f *Fetcher) fetch(ctx context.Context, u *url.URL) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.9,*/*;q=0.1")
	resp, err := f.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	final := resp.Request.URL
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", &fetchError{fmt.Sprintf("GET %s answered %s", final.Redacted(), resp.Status)}
	}

	// Read at most BodyBytesMax+1 bytes: the extra byte tells a body cut
	// at the bound from one that fits exactly.
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.BodyBytesMax+1))
	if err != nil {
		return "", err
	}
	cut := int64(len(body)) > f.cfg.BodyBytesMax
	if cut {
		body = body[:f.cfg.BodyBytesMax]
	}

	contentType := resp.Header.Get("Content-Type")
	if contentType == "" {
		contentType = http.DetectContentType(body[:min(len(body), sniffBytes)])
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", &fetchError{fmt.Sprintf("%s has an unreadable Content-Type %q", final.Redacted(), contentType)}
	}
	kind := contentKind(mediaType)
	if kind == 0 {
		return "", &fetchError{fmt.Sprintf("%s is %s, which fetch_webpage cannot read: it reads HTML pages, plain text and JSON",
			final.Redacted(), mediaType)}
	}

	var text string
	switch kind {
	case kindHTML:
		text, err = f.markdown(ctx, body, contentType, final)
		if err != nil {
			return "", &fetchError{fmt.Sprintf("%s could not be turned into markdown: %v", final.Redacted(), err)}
		}
	case kindText:
		text = decodeText(body, contentType)
	case kindJSON:
		text = strings.ToValidUTF8(string(body), "\uFFFD")
	}

	var notes []string
	if cut {
		notes = append(notes, fmt.Sprintf("[fetch_webpage: the page is larger than %d bytes; only its first %d bytes were read]",
			f.cfg.BodyBytesMax, f.cfg.BodyBytesMax))
	}
	if n := utf8.RuneCountInString(text); n > f.cfg.OutputCharsMax {
		text = truncateRunes(text, f.cfg.OutputCharsMax)
		notes = append(notes, fmt.Sprintf("[fetch_webpage: the text is %d characters; only the first %d are shown]",
			n, f.cfg.OutputCharsMax))
	}
	if len(notes) > 0 {
		text = strings.TrimRight(text, "\n") + "\n\n" + strings.Join(notes, "\n")
	}
	return text, nil
}

// titleSearchChars is how far into the markdown the page's title is looked
// for before it is added as a heading.
const titleSearchChars = 1000

// markdown converts an HTML page to markdown, links made absolute against
// the page's URL, and puts the page's title first unless the page's own
// text begins with it.
func (f *Fetcher) markdown(ctx context.Context, body []byte, contentType string, page *url.URL) (string, error) {
	r, err := charset.NewReader(bytes.NewReader(body), contentType)
	if err != nil {
		r = bytes.NewReader(body)
	}
	doc, err := html.Parse(r)
	if err != nil {
		return "", err
	}
	title := strings.Join(strings.Fields(pageTitle(doc)), " ")
	md, err := f.md.ConvertNode(doc, converter.WithContext(ctx), converter.WithDomain(page.String()))
	if err != nil {
		return "", err
	}
	text := strings.ToValidUTF8(string(md), "\uFFFD")
	if title != "" && !strings.Contains(truncateRunes(text, titleSearchChars), title) {
		text = "# " + title + "\n\n" + text
	}
	return text, nil
}

// pageTitle is the text of the document's first <title>.
func pageTitle(n *html.Node) string {
	if n.Type == html.ElementNode && n.Data == "title" {
		var b strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.TextNode {
				b.WriteString(c.Data)
			}
		}
		return b.String()
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if t := pageTitle(c); t != "" {
			return t
		}
	}
	return ""
}

// decodeText decodes a text body by its declared charset (UTF-8 when none
// is declared), invalid bytes replaced.
func decodeText(body []byte, contentType string) string {
	if r, err := charset.NewReader(bytes.NewReader(body), contentType); err == nil {
		if b, err := io.ReadAll(r); err == nil {
			body = b
		}
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}

// truncateRunes returns s's first n characters.
func truncateRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
