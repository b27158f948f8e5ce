package mcpclient

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// httpClient is the client for one sse or streamable_http server: base's
// transport, with cfg's headers added to requests for the server's origin
// (and to no other: not to a host a redirect or the SSE endpoint event
// points at), and response bodies that are not event streams bounded by
// bodyMax bytes. Event streams are bounded per event by the SDK.
func httpClient(base *http.Client, cfg ServerConfig, bodyMax int64) (*http.Client, error) {
	u, err := url.Parse(cfg.ServerURL)
	if err != nil {
		return nil, err
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c := *base
	c.Transport = &originTransport{
		base:    rt,
		scheme:  strings.ToLower(u.Scheme),
		host:    strings.ToLower(u.Host),
		header:  cfg.headers(),
		bodyMax: bodyMax,
	}
	return &c, nil
}

// originTransport is the http.RoundTripper of httpClient.
type originTransport struct {
	base    http.RoundTripper
	scheme  string
	host    string
	header  http.Header
	bodyMax int64
}

func (t *originTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.header) > 0 && strings.EqualFold(req.URL.Scheme, t.scheme) && strings.EqualFold(req.URL.Host, t.host) {
		req = req.Clone(req.Context())
		for k, v := range t.header {
			req.Header[k] = v
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body = &boundedBody{body: resp.Body, max: t.bodyMax, left: t.bodyMax}
	}
	return resp, nil
}

// boundedBody fails a read past its bound, rather than cutting a JSON
// message short without saying so.
type boundedBody struct {
	body io.ReadCloser
	max  int64 // the bound, bytes
	left int64 // bytes that may still be read
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, err := b.body.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, fmt.Errorf("MCP server's response is larger than the %d bytes allowed (Options.MessageBytesMax)", b.max)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.body.Close() }

// sseTransport is the SDK's SSE client transport with the event stream's
// lifetime made the connection's, not that of the context Connect is
// given: the SDK ties its GET to that context, and the pool's is bounded
// by connectTimeout.
type sseTransport struct{ inner *mcp.SSEClientTransport }

func (t *sseTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel) // until connected, ctx bounds the GET
	conn, err := t.inner.Connect(streamCtx)
	if !stop() { // ctx ended during Connect
		if err == nil {
			conn.Close()
		}
		cancel()
		return nil, context.Cause(ctx)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &cancelConn{Connection: conn, cancel: cancel}, nil
}

// cancelConn ends its stream's context when closed.
type cancelConn struct {
	mcp.Connection
	cancel context.CancelFunc
}

func (c *cancelConn) Close() error {
	err := c.Connection.Close()
	c.cancel()
	return err
}
