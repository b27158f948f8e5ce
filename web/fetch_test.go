package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/toolexec"
)

// fakePublic is a public address the test resolver hands out for names
// that stand for public sites. It is never dialled: testDial sends
// connections to it to the test server on loopback instead.
var fakePublic = netip.MustParseAddr("93.184.215.14")

// testResolver resolves names from a table; a name not in it is an error.
type testResolver map[string][]netip.Addr

func (r testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if addrs, ok := r[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// testDialer dials loopback addresses, sends fakePublic to target (a
// loopback "host:port"), counts dials, and fails the test for any other
// address without dialling it.
type testDialer struct {
	t      *testing.T
	target string
	calls  atomic.Int32
}

func (d *testDialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.calls.Add(1)
	ap, err := netip.ParseAddrPort(address)
	switch {
	case err != nil:
		d.t.Errorf("dial %q: not an address", address)
		return nil, errors.New("test: bad address")
	case ap.Addr() == fakePublic && d.target != "":
		address = d.target
	case !ap.Addr().Unmap().IsLoopback():
		d.t.Errorf("dial %s: the fetcher tried to connect to a non-loopback address", address)
		return nil, errors.New("test: refusing to dial a non-loopback address")
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

// newTestFetcher returns a Fetcher that resolves with r (the system's when
// nil) and dials through d.
func newTestFetcher(cfg FetchConfig, r resolver, d *testDialer) *Fetcher {
	if r == nil {
		r = net.DefaultResolver
	}
	f := &Fetcher{resolver: r, dial: d.dial}
	f.init(cfg)
	return f
}

// fetchCall runs fetch_webpage on url.
func fetchCall(t *testing.T, f *Fetcher, url string) toolexec.Result {
	t.Helper()
	res, err := f.Run(context.Background(), toolexec.Call{ID: "call-1", Name: NameFetchWebpage, Arguments: []byte(fmt.Sprintf(`{"url":%q}`, url))})
	if err != nil {
		t.Fatalf("Run(%s): %v", url, err)
	}
	return res
}

func wantSuccess(t *testing.T, res toolexec.Result) string {
	t.Helper()
	if res.Status != toolexec.StatusSuccess {
		t.Fatalf("status %q (%s), want success", res.Status, res.Return)
	}
	return res.Return
}

func wantError(t *testing.T, res toolexec.Result, parts ...string) {
	t.Helper()
	if res.Status != toolexec.StatusError {
		t.Fatalf("status %q, want error; return: %.300s", res.Status, res.Return)
	}
	for _, p := range parts {
		if !strings.Contains(res.Return, p) {
			t.Errorf("error %q does not mention %q", res.Return, p)
		}
	}
}

const testPage = `<!DOCTYPE html>
<html><head>
<title>Kelpie Test Page</title>
<meta charset="iso-8859-1">
<style>body { color: red } .hidden-style-marker {}</style>
<script>var marker = "SCRIPT_MARKER"; document.write("x");</script>
<link rel="stylesheet" href="/s.css">
</head>
<body>
<h1>Main Heading</h1>
<p>An introduction with <a href="/docs/start?x=1">a relative link</a> and
<a href="https://example.org/abs">an absolute link</a>. Caf` + "\xe9" + ` au lait.</p>
<h2>Shopping list</h2>
<ul><li>first item</li><li>second item</li></ul>
<ol><li>step one</li><li>step two</li></ol>
<p><strong>Bold</strong> and <em>italic</em>.</p>
<noscript>NOSCRIPT_MARKER</noscript>
<script type="application/ld+json">{"LDJSON_MARKER": 1}</script>
</body></html>`

// TestFetchHTMLToMarkdown fetches a page and checks the markdown.
func TestFetchHTMLToMarkdown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ua := r.Header.Get("User-Agent"); !strings.Contains(ua, "Kelpie") {
			t.Errorf("User-Agent %q", ua)
		}
		w.Header().Set("Content-Type", "text/html; charset=iso-8859-1")
		io.WriteString(w, testPage)
	}))
	defer srv.Close()
	f := newTestFetcher(FetchConfig{AllowPrivate: true}, nil, &testDialer{t: t})
	md := wantSuccess(t, fetchCall(t, f, srv.URL+"/page"))

	for _, want := range []string{
		"# Kelpie Test Page\n",
		"# Main Heading",
		"## Shopping list",
		"- first item\n- second item",
		"1. step one\n2. step two",
		"[a relative link](" + srv.URL + "/docs/start?x=1)",
		"[an absolute link](https://example.org/abs)",
		"**Bold** and *italic*",
		"Café au lait",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	for _, unwanted := range []string{"SCRIPT_MARKER", "color: red", "hidden-style-marker", "NOSCRIPT_MARKER", "LDJSON_MARKER", "<h1>", "<script"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("markdown contains %q:\n%s", unwanted, md)
		}
	}
}

// TestFetchTitleNotRepeated: a page whose text begins with its title gets
// no extra heading.
func TestFetchTitleNotRepeated(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<html><head><title>Same Title</title></head><body><h1>Same Title</h1><p>Body.</p></body></html>`)
	}))
	defer srv.Close()
	f := newTestFetcher(FetchConfig{AllowPrivate: true}, nil, &testDialer{t: t})
	md := wantSuccess(t, fetchCall(t, f, srv.URL))
	if n := strings.Count(md, "Same Title"); n != 1 {
		t.Errorf("title appears %d times, want once:\n%s", n, md)
	}
}

// TestFetchTextAndJSON: plain text and JSON come back as they are.
func TestFetchTextAndJSON(t *testing.T) {
	bodies := map[string]struct{ contentType, body string }{
		"/plain":    {"text/plain; charset=utf-8", "line one\n<b>not html</b>\n  indented ünïcode\n"},
		"/markdown": {"text/markdown", "# Heading\n\n- item\n"},
		"/json":     {"application/json", `{"a": [1, 2, {"b": "<c>"}], "d": null}`},
		"/problem":  {"application/problem+json", `{"title":"x"}`},
		"/sniffed":  {"", "no content type, just text\n"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := bodies[r.URL.Path]
		if b.contentType == "" {
			w.Header()["Content-Type"] = nil // no sniffing by the server
		} else {
			w.Header().Set("Content-Type", b.contentType)
		}
		io.WriteString(w, b.body)
	}))
	defer srv.Close()
	f := newTestFetcher(FetchConfig{AllowPrivate: true}, nil, &testDialer{t: t})
	for path, b := range bodies {
		if got := wantSuccess(t, fetchCall(t, f, srv.URL+path)); got != b.body {
			t.Errorf("%s: got %q, want %q", path, got, b.body)
		}
	}
}

// TestFetchUnsupportedContentType: other content types are tool errors
// that name the type.
func TestFetchUnsupportedContentType(t *testing.T) {
	types := []string{"image/png", "application/pdf", "application/octet-stream", "video/mp4", "application/zip"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.URL.Query().Get("type"))
		w.Write([]byte{0x89, 'P', 'N', 'G', 0, 1, 2, 3})
	}))
	defer srv.Close()
	f := newTestFetcher(FetchConfig{AllowPrivate: true}, nil, &testDialer{t: t})
	for _, ct := range types {
		wantError(t, fetchCall(t, f, srv.URL+"/file?type="+ct), ct, "cannot read", "HTML")
	}
}

// TestFetchHTTPStatus: an error status is a tool error with the status.
func TestFetchHTTPStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gone", http.StatusNotFound)
	}))
	defer srv.Close()
	f := newTestFetcher(FetchConfig{AllowPrivate: true}, nil, &testDialer{t: t})
	wantError(t, fetchCall(t, f, srv.URL+"/missing"), "404 Not Found", "/missing")
}

// TestFetchBodyBound: a 50 MB body is cut at BodyBytesMax (1 MiB here, to
// keep the test fast under -race), the text says so, and the client stops
// reading long before the end.
func TestFetchBodyBound(t *testing.T) {
	const bodyBytes = 50 << 20
	const bodyBytesMax = 1 << 20
	var written atomic.Int64
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(bodyBytes))
		line := []byte(strings.Repeat("x", 1023) + "\n")
		for written.Load() < bodyBytes {
			n, err := w.Write(line)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	f := newTestFetcher(FetchConfig{AllowPrivate: true, BodyBytesMax: bodyBytesMax}, nil, &testDialer{t: t})
	out := wantSuccess(t, fetchCall(t, f, srv.URL+"/huge"))
	if want := fmt.Sprintf("larger than %d bytes; only its first %d bytes were read", bodyBytesMax, bodyBytesMax); !strings.Contains(out, want) {
		t.Errorf("the text does not say the body was cut (%q): ...%s", want, out[max(0, len(out)-300):])
	}
	if want := fmt.Sprintf("only the first %d are shown", DefaultOutputCharsMax); !strings.Contains(out, want) {
		t.Errorf("the text does not say the output was cut (%q)", want)
	}
	if n := utf8.RuneCountInString(out); n > DefaultOutputCharsMax+500 {
		t.Errorf("returned %d characters, bound %d (+ notes)", n, DefaultOutputCharsMax)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server is still writing: the client did not close the body")
	}
	if w := written.Load(); w >= bodyBytes {
		t.Errorf("the server wrote the whole %d bytes; the client should have stopped near %d", w, bodyBytesMax)
	}
}

// TestFetchOutputBound: the text is cut at OutputCharsMax characters.
func TestFetchOutputBound(t *testing.T) {
	body := strings.Repeat("é", 10000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, body)
	}))
	defer srv.Close()
	f := newTestFetcher(FetchConfig{AllowPrivate: true, OutputCharsMax: 1000}, nil, &testDialer{t: t})
	out := wantSuccess(t, fetchCall(t, f, srv.URL))
	text, note, ok := strings.Cut(out, "\n\n[fetch_webpage:")
	if !ok {
		t.Fatalf("no note on the cut: %q", out[max(0, len(out)-200):])
	}
	if n := utf8.RuneCountInString(text); n != 1000 {
		t.Errorf("text has %d characters, want 1000", n)
	}
	if !strings.Contains(note, "10000 characters; only the first 1000") {
		t.Errorf("note %q", note)
	}
}

// stallServer answers /headers-only with nothing and /mid-body with part
// of a body, then stalls until the test ends or the client leaves.
func stallServer(t *testing.T) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mid-body" {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "1000000")
			io.WriteString(w, "the beginning")
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv
}

// TestFetchTimeout: a stalling server ends the fetch at the time bound
// with a tool error.
func TestFetchTimeout(t *testing.T) {
	srv := stallServer(t)
	f := newTestFetcher(FetchConfig{AllowPrivate: true, Timeout: 300 * time.Millisecond}, nil, &testDialer{t: t})
	for _, path := range []string{"/headers-only", "/mid-body"} {
		start := time.Now()
		wantError(t, fetchCall(t, f, srv.URL+path), "did not answer within 300ms")
		// The server stalls until the test ends: only the bound ends the
		// fetch. The margin is wide; this checks the bound holds, not speed.
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%s: the fetch took %v with a bound of 300ms", path, took)
		}
	}
}

// TestFetchCancelled: a cancelled ctx is an error return, not a result.
func TestFetchCancelled(t *testing.T) {
	srv := stallServer(t)
	f := newTestFetcher(FetchConfig{AllowPrivate: true}, nil, &testDialer{t: t})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	_, err := f.Run(ctx, toolexec.Call{Name: NameFetchWebpage, Arguments: []byte(`{"url":"` + srv.URL + `/headers-only"}`)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

// TestFetchRedirects: up to RedirectsMax redirects are followed, one more
// is a tool error; redirects to other schemes are refused.
func TestFetchRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, ok := strings.CutPrefix(r.URL.Path, "/hop/"); ok {
			left, _ := strconv.Atoi(n)
			if left > 0 {
				http.Redirect(w, r, fmt.Sprintf("/hop/%d", left-1), http.StatusFound)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "arrived")
			return
		}
		if r.URL.Path == "/to-file" {
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
			return
		}
		http.Redirect(w, r, "ftp://example.org/x", http.StatusMovedPermanently)
	}))
	defer srv.Close()
	f := newTestFetcher(FetchConfig{AllowPrivate: true}, nil, &testDialer{t: t})
	if got := wantSuccess(t, fetchCall(t, f, fmt.Sprintf("%s/hop/%d", srv.URL, RedirectsMax))); got != "arrived" {
		t.Errorf("after %d redirects: %q", RedirectsMax, got)
	}
	wantError(t, fetchCall(t, f, fmt.Sprintf("%s/hop/%d", srv.URL, RedirectsMax+1)), "stopped after 5 redirects")
	wantError(t, fetchCall(t, f, srv.URL+"/to-ftp"), "a redirect to a ftp: URL, which fetch_webpage does not follow")
	wantError(t, fetchCall(t, f, srv.URL+"/to-file"), "a redirect to a file: URL, which fetch_webpage does not follow")
}

// TestFetchRefusesLoopback: with AllowPrivate off, loopback by address or
// by name is refused before any connection is made.
func TestFetchRefusesLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "secret")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	d := &testDialer{t: t}
	f := newTestFetcher(FetchConfig{}, nil, d)
	for _, u := range []string{
		srv.URL + "/",
		fmt.Sprintf("http://[::1]:%d/", port),
		fmt.Sprintf("http://localhost:%d/", port),
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port),
		fmt.Sprintf("https://127.0.0.1:%d/", port),
	} {
		wantError(t, fetchCall(t, f, u), "loopback", "only reaches public addresses")
	}
	// Shorthand forms of 127.0.0.1: a resolver may not know them (Go's
	// does not), or turn them into 127.0.0.1 (the C library's), which is
	// refused; either way nothing is dialled.
	for _, host := range []string{"127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1"} {
		wantError(t, fetchCall(t, f, fmt.Sprintf("http://%s:%d/", host, port)), host)
	}
	if n := d.calls.Load(); n != 0 {
		t.Errorf("%d dials, want none", n)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server was reached %d times", n)
	}
}

// TestFetchAllowsLoopbackWhenAllowed: AllowPrivate lets the same URLs
// through.
func TestFetchAllowsLoopbackWhenAllowed(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "reached "+r.Host)
	})
	srv := httptest.NewServer(handler)
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	ln6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("IPv6 loopback is needed under CI: %v", err)
		}
		t.Logf("no IPv6 loopback (%v): [::1] not tested", err)
	}
	urls := []string{srv.URL + "/", fmt.Sprintf("http://localhost:%d/", port)}
	if ln6 != nil {
		srv6 := httptest.NewUnstartedServer(handler)
		srv6.Listener.Close()
		srv6.Listener = ln6
		srv6.Start()
		defer srv6.Close()
		urls = append(urls, srv6.URL+"/")
	}
	f := newTestFetcher(FetchConfig{AllowPrivate: true}, nil, &testDialer{t: t})
	for _, u := range urls {
		if got := wantSuccess(t, fetchCall(t, f, u)); !strings.HasPrefix(got, "reached ") {
			t.Errorf("%s: %q", u, got)
		}
	}
}

// TestFetchDNSRebinding: names that resolve to private addresses are
// refused at dial time, and the dial never happens.
func TestFetchDNSRebinding(t *testing.T) {
	r := testResolver{
		"rebind.test":   {netip.MustParseAddr("10.0.0.1")},
		"metadata.test": {netip.MustParseAddr("169.254.169.254")},
		"ula.test":      {netip.MustParseAddr("fd00::1")},
		"mapped.test":   {netip.MustParseAddr("::ffff:192.168.1.1")},
		"cgnat.test":    {netip.MustParseAddr("100.64.1.1")},
		"several.test":  {netip.MustParseAddr("172.16.5.4"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("0.0.0.0")},
	}
	d := &testDialer{t: t}
	f := newTestFetcher(FetchConfig{}, r, d)
	for host, addrs := range r {
		res := fetchCall(t, f, "http://"+host+"/latest/meta-data/")
		wantError(t, res, host, addrs[0].String(), "only reaches public addresses")
	}
	if n := d.calls.Load(); n != 0 {
		t.Errorf("%d dials, want none", n)
	}
}

// TestFetchRebindBetweenConnections: a name that first resolves to a
// public address and then to a private one is refused on the second
// connection: the check is made on every dial, not once per URL.
func TestFetchRebindBetweenConnections(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Connection", "close") // the redirect needs a new connection
		http.Redirect(w, r, "/second", http.StatusFound)
	}))
	defer srv.Close()
	var lookups atomic.Int32
	r := resolverFunc(func(host string) []netip.Addr {
		if lookups.Add(1) == 1 {
			return []netip.Addr{fakePublic}
		}
		return []netip.Addr{netip.MustParseAddr("10.1.2.3")}
	})
	d := &testDialer{t: t, target: srv.Listener.Addr().String()}
	f := newTestFetcher(FetchConfig{}, r, d)
	wantError(t, fetchCall(t, f, "http://flip.test/first"), "flip.test", "10.1.2.3", "only reaches public addresses")
	if n := hits.Load(); n != 1 {
		t.Errorf("the server was reached %d times, want 1 (the first request)", n)
	}
	if n := d.calls.Load(); n != 1 {
		t.Errorf("%d dials, want 1", n)
	}
}

// resolverFunc resolves every name with a function.
type resolverFunc func(host string) []netip.Addr

func (f resolverFunc) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f(host), nil
}

// TestFetchRedirectToPrivate: a public page that redirects to a private
// address, by address or by name, is refused at the redirect.
func TestFetchRedirectToPrivate(t *testing.T) {
	var secretHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/secret", func(w http.ResponseWriter, r *http.Request) {
		secretHits.Add(1)
		io.WriteString(w, "secret")
	})
	var srvURL string
	mux.HandleFunc("/to-loopback", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srvURL+"/secret", http.StatusFound)
	})
	mux.HandleFunc("/to-rebind", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://rebind.test/secret", http.StatusFound)
	})
	mux.HandleFunc("/to-metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "public page")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	srvURL = srv.URL
	r := testResolver{
		"public.test": {fakePublic},
		"rebind.test": {netip.MustParseAddr("192.168.0.10")},
	}
	d := &testDialer{t: t, target: srv.Listener.Addr().String()}
	f := newTestFetcher(FetchConfig{}, r, d)

	// The public name works: the mapping to the test server is sound.
	if got := wantSuccess(t, fetchCall(t, f, "http://public.test/ok")); got != "public page" {
		t.Fatalf("public page: %q", got)
	}
	wantError(t, fetchCall(t, f, "http://public.test/to-loopback"), "127.0.0.1", "loopback")
	wantError(t, fetchCall(t, f, "http://public.test/to-rebind"), "rebind.test", "192.168.0.10")
	wantError(t, fetchCall(t, f, "http://public.test/to-metadata"), "169.254.169.254", "link-local")
	if n := secretHits.Load(); n != 0 {
		t.Errorf("the private page was reached %d times", n)
	}
}

// TestFetchControlRefuses: the default dialer's socket check refuses a
// blocked address on its own, before connecting, and lets it through
// when private addresses are allowed.
func TestFetchControlRefuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()

	f := NewFetcher(FetchConfig{})
	_, err = f.dial(context.Background(), "tcp", ln.Addr().String())
	if !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("dial with the socket check = %v, want a blocked address", err)
	}
	allowed := NewFetcher(FetchConfig{AllowPrivate: true})
	conn, err := allowed.dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with AllowPrivate: %v", err)
	}
	conn.Close()
	<-accepted
	select {
	case <-accepted:
		t.Error("the refused dial reached the listener")
	default:
	}
}

// TestFetchArguments: bad arguments are tool errors that say what is
// wrong.
func TestFetchArguments(t *testing.T) {
	f := newTestFetcher(FetchConfig{}, testResolver{}, &testDialer{t: t})
	tests := []struct{ args, want string }{
		{`{"url": 5}`, `argument "url" must be a string, not number`},
		{`{"url": ["http://x"]}`, `argument "url" must be a string, not array`},
		{`{}`, "url argument is required"},
		{``, "url argument is required"},
		{`{"url": ""}`, "url argument is required"},
		{`{"url": "example.com/page"}`, "not an http:// or https:// URL"},
		{`{"url": "ftp://example.com/"}`, "not an http:// or https:// URL"},
		{`{"url": "file:///etc/passwd"}`, "not an http:// or https:// URL"},
		{`{"url": "javascript:alert(1)"}`, "not an http:// or https:// URL"},
		{`{"url": "http:///nohost"}`, "has no host"},
		{`{"uri": "http://example.com"}`, `unknown argument "uri"; its arguments are url`},
		{`[1]`, "must be a JSON object, not array"},
		{`{"url": "x"`, "not a valid JSON object"},
		{`{"url": "http://no-such-host.test/"}`, `host "no-such-host.test"`},
	}
	for _, tt := range tests {
		res, err := f.Run(context.Background(), toolexec.Call{Name: NameFetchWebpage, Arguments: []byte(tt.args)})
		if err != nil {
			t.Errorf("%s: Run error %v", tt.args, err)
			continue
		}
		if res.Status != toolexec.StatusError || !strings.Contains(res.Return, tt.want) {
			t.Errorf("%s: got %s %q, want an error mentioning %q", tt.args, res.Status, res.Return, tt.want)
		}
	}
	// request_heartbeat (memgpt agents) is accepted and ignored.
	res, err := f.Run(context.Background(), toolexec.Call{Name: NameFetchWebpage, Arguments: []byte(`{"url":"ftp://x/","request_heartbeat":true}`)})
	if err != nil || strings.Contains(res.Return, "unknown argument") {
		t.Errorf("request_heartbeat refused: %v %q", err, res.Return)
	}
}
