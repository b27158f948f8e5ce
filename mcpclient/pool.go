package mcpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Defaults of Options. The three timeouts are Letta's.
const (
	DefaultConnectTimeout  = 30 * time.Second
	DefaultListTimeout     = 30 * time.Second
	DefaultCallTimeout     = 60 * time.Second
	DefaultIdleTimeout     = 10 * time.Minute
	DefaultResultBytesMax  = 64 << 10
	DefaultMessageBytesMax = 4 << 20
	DefaultStdioPATH       = "/usr/local/bin:/usr/bin:/bin"
)

// opConnect is the Op of an Error from connecting.
const opConnect = "connect"

// Fixed limits.
const (
	// resultBytesMin is the smallest Options.ResultBytesMax: room for the
	// truncation note and some of the result.
	resultBytesMin = 256
	// toolsMax bounds the tools one server may list.
	toolsMax = 4096
	// listPagesMax bounds the pages of one tool listing.
	listPagesMax = 64
	// pingTimeoutMax bounds the health check after a call timed out (and
	// so does callTimeout, if less).
	pingTimeoutMax = 5 * time.Second
	// clientName is how Kelpie introduces itself to servers.
	clientName = "kelpie"
)

// Options configure a Pool. The zero value is usable: stdio servers
// refused, the default timeouts and bounds.
type Options struct {
	// AllowStdio lets the pool run stdio servers. They are arbitrary
	// commands run as Kelpie's user, so on a shared server leave it off.
	AllowStdio bool
	// StdioPATH is the PATH a stdio server gets unless its config's env
	// sets one (DefaultStdioPATH if empty); commands are looked up in it.
	StdioPATH string

	// ConnectTimeout bounds connecting: starting the process or reaching
	// the URL, and the MCP handshake (DefaultConnectTimeout if zero).
	ConnectTimeout time.Duration
	// ListTimeout bounds listing a server's tools (DefaultListTimeout).
	ListTimeout time.Duration
	// CallTimeout bounds one tool call (DefaultCallTimeout).
	CallTimeout time.Duration
	// IdleTimeout closes a connection (ending its process) that has not
	// been used for this long (DefaultIdleTimeout; negative: never).
	IdleTimeout time.Duration

	// ResultBytesMax bounds the text of a tool result; a longer one is
	// cut, with a note (DefaultResultBytesMax; at least 256).
	ResultBytesMax int
	// MessageBytesMax bounds one message from a server: a JSON-RPC line
	// of a stdio server, an event or a response body of an HTTP one
	// (DefaultMessageBytesMax).
	MessageBytesMax int

	// HTTPClient is the base of the clients for sse and streamable_http
	// servers: its transport (dialer, proxy, TLS), redirect policy and
	// jar are used, with each server's headers added. It should have no
	// Timeout, which would cut the long-lived event streams; the pool
	// bounds each operation itself. nil means a client of the pool's own.
	HTTPClient *http.Client
}

// withDefaults fills in o's zero fields.
func (o Options) withDefaults() Options {
	if o.StdioPATH == "" {
		o.StdioPATH = DefaultStdioPATH
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ListTimeout <= 0 {
		o.ListTimeout = DefaultListTimeout
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.ResultBytesMax <= 0 {
		o.ResultBytesMax = DefaultResultBytesMax
	}
	o.ResultBytesMax = max(o.ResultBytesMax, resultBytesMin)
	if o.MessageBytesMax <= 0 {
		o.MessageBytesMax = DefaultMessageBytesMax
	}
	return o
}

// Pool holds Kelpie's connections to MCP servers: one per server ID, made
// when first needed and reused by later operations, concurrent ones
// included. A connection is replaced when the server's config changes;
// one that broke (a dropped connection, a dead process) is dropped, and
// the next operation connects again, once. Every operation is bounded by
// its named timeout and by its context, and returns promptly when either
// ends, whatever the server does.
//
// A Pool is safe for concurrent use. Close it to end its connections and
// child processes.
type Pool struct {
	opts   Options
	client *mcp.Client
	http   *http.Client
	ownTr  *http.Transport // the transport of http, when the pool made it

	ctx    context.Context // ended by Close
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	servers map[string]*entry // by Server.ID
	closing sync.WaitGroup    // connections being closed
	procs   procSet           // running stdio servers

	connects atomic.Int64 // connection attempts, for tests
}

// entry is the pool's slot for one server ID.
type entry struct {
	// turn is held (a value sent) by the operation connecting the
	// server, so that concurrent ones wait for its connection.
	turn chan struct{}
	// conn is the live connection, nil if none; guarded by Pool.mu.
	conn *conn
}

// conn is one connection to a server.
type conn struct {
	entry *entry
	hash  string // of the config it was made with
	cs    *mcp.ClientSession
	proc  *process // a stdio server's; nil for HTTP
	ended chan struct{}

	inflight int         // operations using it; guarded by Pool.mu
	idle     *time.Timer // closes it when idle; nil if IdleTimeout < 0
	once     sync.Once
}

// alive reports whether the session has not ended.
func (c *conn) alive() bool {
	select {
	case <-c.ended:
		return false
	default:
		return true
	}
}

// close ends the session and, for a stdio server, its process. The
// process goes first: the session's Close waits for a write blocked on a
// server that stopped reading, which only closing the pipe releases.
func (c *conn) close() {
	c.once.Do(func() {
		if c.idle != nil {
			c.idle.Stop()
		}
		if c.proc != nil {
			c.proc.stop()
		}
		c.cs.Close()
	})
}

// NewPool returns a pool configured by opts.
func NewPool(opts Options) *Pool {
	opts = opts.withDefaults()
	p := &Pool{
		opts:    opts,
		servers: make(map[string]*entry),
		client: mcp.NewClient(&mcp.Implementation{Name: clientName, Version: "1"}, &mcp.ClientOptions{
			// Kelpie offers no roots, sampling or elicitation.
			Capabilities: &mcp.ClientCapabilities{},
		}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.http = opts.HTTPClient
	if p.http == nil {
		p.http = &http.Client{}
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			p.ownTr = t.Clone()
			p.http.Transport = p.ownTr
		}
	}
	return p
}

// ListTools lists the tools server s offers, connecting to it if needed.
// Listing is repeated once on a new connection if the connection breaks.
func (p *Pool) ListTools(ctx context.Context, s Server) ([]Tool, error) {
	if err := p.check(s); err != nil {
		return nil, p.errorf(s, "list tools", err)
	}
	for attempt := 0; ; attempt++ {
		c, err := p.acquire(ctx, s)
		if err != nil {
			return nil, p.errorf(s, opConnect, err)
		}
		lctx, cancel := context.WithTimeoutCause(ctx, p.opts.ListTimeout, timeoutError("listTimeout", p.opts.ListTimeout))
		tools, err := await(lctx, func(ctx context.Context) ([]Tool, error) { return listTools(ctx, c.cs) }, nil)
		p.release(c)
		if err == nil {
			cancel()
			return tools, nil
		}
		lost, err := p.failed(ctx, lctx, c, err)
		cancel()
		if lost && attempt == 0 {
			continue // listing can be repeated
		}
		return nil, p.errorf(s, "list tools", err)
	}
}

// listTools reads all pages of a server's tool list.
func listTools(ctx context.Context, cs *mcp.ClientSession) ([]Tool, error) {
	var tools []Tool
	params := &mcp.ListToolsParams{}
	for range listPagesMax {
		res, err := cs.ListTools(ctx, params)
		if err != nil {
			return nil, err
		}
		for _, t := range res.Tools {
			if len(tools) == toolsMax {
				return nil, fmt.Errorf("the server lists more than %d tools", toolsMax)
			}
			tool, err := toolOf(t)
			if err != nil {
				return nil, err
			}
			tools = append(tools, tool)
		}
		if res.NextCursor == "" {
			return tools, nil
		}
		params = &mcp.ListToolsParams{Cursor: res.NextCursor}
	}
	return nil, fmt.Errorf("the server's tool list has more than %d pages", listPagesMax)
}

// CallTool calls tool name of server s with args, a JSON object (empty
// means {}), connecting to the server if needed. A result, even one the
// server marks as an error (StatusError), comes back as a Result; an
// error means the call was not made (no connection, bad arguments) or
// did not finish: a timeout (ErrTimeout), ctx ending (ctx's error), the
// connection breaking (ErrConnectionLost), or a JSON-RPC error from the
// server. A call is repeated on a new connection only when the server
// said it no longer knows the session, so it cannot have run the tool.
func (p *Pool) CallTool(ctx context.Context, s Server, name string, args json.RawMessage) (toolexec.Result, error) {
	op := fmt.Sprintf("call tool %q", name)
	if err := p.check(s); err != nil {
		return toolexec.Result{}, p.errorf(s, op, err)
	}
	args = bytes.TrimSpace(args)
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	if args[0] != '{' || !json.Valid(args) {
		return toolexec.Result{}, p.errorf(s, op, ErrInvalidArguments)
	}
	params := &mcp.CallToolParams{Name: name, Arguments: args}
	for attempt := 0; ; attempt++ {
		c, err := p.acquire(ctx, s)
		if err != nil {
			return toolexec.Result{}, p.errorf(s, opConnect, err)
		}
		cctx, cancel := context.WithTimeoutCause(ctx, p.opts.CallTimeout, timeoutError("callTimeout", p.opts.CallTimeout))
		res, err := await(cctx, func(ctx context.Context) (*mcp.CallToolResult, error) { return c.cs.CallTool(ctx, params) }, nil)
		p.release(c)
		if err == nil {
			cancel()
			return resultOf(res, p.opts.ResultBytesMax), nil
		}
		_, err = p.failed(ctx, cctx, c, err)
		cancel()
		if errors.Is(err, mcp.ErrSessionMissing) && attempt == 0 {
			continue
		}
		return toolexec.Result{}, p.errorf(s, op, err)
	}
}

// Disconnect closes the connection to the server with this ID, if any
// (for a deleted server). A later operation connects again.
func (p *Pool) Disconnect(serverID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.servers[serverID]
	if e == nil {
		return
	}
	delete(p.servers, serverID)
	if e.conn != nil {
		p.retireLocked(e.conn)
	}
}

// Close closes all connections, ending the stdio servers' processes, and
// waits for that. Operations in progress fail, and later ones return
// ErrClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.cancel()
		for id, e := range p.servers {
			if e.conn != nil {
				p.retireLocked(e.conn)
			}
			delete(p.servers, id)
		}
	}
	p.mu.Unlock()
	p.closing.Wait()
	p.procs.close() // any a failed or abandoned connect left
	if p.ownTr != nil {
		p.ownTr.CloseIdleConnections()
	}
	return nil
}

// check refuses a server the pool cannot connect to.
func (p *Pool) check(s Server) error {
	if s.ID == "" {
		return fmt.Errorf("%w: the server has no ID", ErrInvalidConfig)
	}
	if err := s.Config.Validate(); err != nil {
		return err
	}
	if s.Config.Type == TypeStdio && !p.opts.AllowStdio {
		return ErrStdioDisabled
	}
	return nil
}

func (p *Pool) errorf(s Server, op string, err error) error {
	return &Error{ServerID: s.ID, ServerName: s.Name, Op: op, Err: err}
}

// acquire returns a live connection to s made with its current config,
// connecting if there is none, and counts the caller as using it until
// release.
func (p *Pool) acquire(ctx context.Context, s Server) (*conn, error) {
	hash := s.Config.hash()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	e := p.servers[s.ID]
	if e == nil {
		e = &entry{turn: make(chan struct{}, 1)}
		p.servers[s.ID] = e
	}
	if c := p.usableLocked(e, hash); c != nil {
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()

	select {
	case e.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case <-p.ctx.Done():
		return nil, ErrClosed
	}
	defer func() { <-e.turn }()

	// Another operation may have connected while this one waited.
	p.mu.Lock()
	if p.closed || p.servers[s.ID] != e {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if c := p.usableLocked(e, hash); c != nil {
		p.mu.Unlock()
		return c, nil
	}
	if e.conn != nil { // broken, or made with an old config
		p.retireLocked(e.conn)
	}
	p.mu.Unlock()

	c, err := p.connect(ctx, s, e, hash)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed || p.servers[s.ID] != e { // closed or disconnected meanwhile
		p.mu.Unlock()
		c.close()
		return nil, ErrClosed
	}
	e.conn = c
	c.inflight++
	p.mu.Unlock()
	return c, nil
}

// usableLocked returns e's connection if it is alive and made with the
// config whose hash is given, counting the caller as using it.
func (p *Pool) usableLocked(e *entry, hash string) *conn {
	c := e.conn
	if c == nil || c.hash != hash || !c.alive() {
		return nil
	}
	c.inflight++
	if c.idle != nil {
		c.idle.Stop()
	}
	return c
}

// release ends the caller's use of c, starting its idle timer when no
// one uses it.
func (p *Pool) release(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.inflight--
	if c.inflight == 0 && c.idle != nil && c.entry.conn == c {
		c.idle.Reset(p.opts.IdleTimeout)
	}
}

// idleExpired closes c if it is still unused.
func (p *Pool) idleExpired(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.inflight == 0 && c.entry.conn == c {
		p.retireLocked(c)
	}
}

// retireLocked takes c, its entry's connection, out of the pool and
// closes it in the background (closing a stdio server waits for its
// process; an HTTP one sends a DELETE), so that the operation that found
// it broken returns at once. Close waits for it.
func (p *Pool) retireLocked(c *conn) {
	c.entry.conn = nil
	p.closing.Add(1)
	go func() {
		defer p.closing.Done()
		c.close()
	}()
}

// retire retires c unless it is no longer its entry's connection, in
// which case whatever replaced or removed it has closed it.
func (p *Pool) retire(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.entry.conn == c {
		p.retireLocked(c)
	}
}

// connect makes a new connection to s, within connectTimeout.
func (p *Pool) connect(ctx context.Context, s Server, e *entry, hash string) (*conn, error) {
	cctx, cancel := context.WithTimeoutCause(ctx, p.opts.ConnectTimeout, timeoutError("connectTimeout", p.opts.ConnectTimeout))
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel)
	defer stop()

	t, stdio, err := p.transport(s.Config)
	if err != nil {
		return nil, err
	}
	if stdio == nil && p.ownTr != nil {
		// A (re)connect is rare, and often follows a lost connection:
		// keep-alive connections the server may have closed meanwhile
		// would fail the handshake's first POST (net/http does not
		// retry a POST on a closed idle connection).
		p.ownTr.CloseIdleConnections()
	}
	p.connects.Add(1)
	late := func(cs *mcp.ClientSession) { cs.Close() } // connected after the caller gave up
	cs, err := await(cctx, func(ctx context.Context) (*mcp.ClientSession, error) {
		cs, err := p.client.Connect(ctx, t, nil)
		if err != nil && stdio != nil && stdio.proc != nil {
			stdio.proc.stop()
		}
		return cs, err
	}, late)
	if err != nil {
		switch {
		case p.ctx.Err() != nil:
			return nil, ErrClosed
		case ctx.Err() != nil:
			return nil, context.Cause(ctx)
		case cctx.Err() != nil:
			return nil, context.Cause(cctx)
		}
		if stdio != nil && stdio.proc != nil {
			err = fmt.Errorf("%w%s", err, stdio.proc.exitInfo())
		}
		return nil, err
	}
	c := &conn{entry: e, hash: hash, cs: cs, ended: make(chan struct{})}
	if stdio != nil {
		c.proc = stdio.proc
	}
	if p.opts.IdleTimeout > 0 {
		c.idle = time.AfterFunc(p.opts.IdleTimeout, func() { p.idleExpired(c) })
		c.idle.Stop() // started when the first user releases it
	}
	go func() {
		cs.Wait()
		close(c.ended)
	}()
	return c, nil
}

// transport returns the SDK transport for cfg; for a stdio server also
// as the pool's own type, to reach its process.
func (p *Pool) transport(cfg ServerConfig) (mcp.Transport, *stdioTransport, error) {
	switch cfg.Type {
	case TypeStdio:
		t := &stdioTransport{cfg: cfg, path: p.opts.StdioPATH, lineMax: p.opts.MessageBytesMax, procs: &p.procs}
		return t, t, nil
	case TypeSSE:
		hc, err := httpClient(p.http, cfg, int64(p.opts.MessageBytesMax))
		if err != nil {
			return nil, nil, err
		}
		return &sseTransport{inner: &mcp.SSEClientTransport{
			Endpoint: cfg.ServerURL, HTTPClient: hc, MaxEventSize: p.opts.MessageBytesMax,
		}}, nil, nil
	case TypeStreamableHTTP:
		hc, err := httpClient(p.http, cfg, int64(p.opts.MessageBytesMax))
		if err != nil {
			return nil, nil, err
		}
		return &mcp.StreamableClientTransport{
			Endpoint:   cfg.ServerURL,
			HTTPClient: hc,
			// The pool reconnects; the SDK's retries (with a backoff of
			// seconds) would only delay the error of a dead server.
			MaxRetries:   -1,
			MaxEventSize: p.opts.MessageBytesMax,
		}, nil, nil
	}
	return nil, nil, fmt.Errorf("%w: unknown mcp_server_type %q", ErrInvalidConfig, cfg.Type)
}

// failed classifies the error of an operation on c, run with opCtx (the
// caller's ctx plus the operation's timeout). It reports whether the
// connection was lost, in which case c has been retired, and returns the
// error to report.
func (p *Pool) failed(ctx, opCtx context.Context, c *conn, err error) (lost bool, _ error) {
	if opCtx.Err() != nil {
		if ctx.Err() != nil {
			return false, context.Cause(ctx) // the caller gave up
		}
		// The server did not answer in time. It may only be slow at this
		// tool, or hung: ask it.
		go p.healthCheck(c)
		return false, context.Cause(opCtx)
	}
	if serverError(err) {
		return false, err // the server answered, with an error
	}
	p.retire(c)
	info := ""
	if c.proc != nil {
		info = c.proc.exitInfo()
	}
	return true, fmt.Errorf("%w: %w%s", ErrConnectionLost, err, info)
}

// errRejected matches the SDK's error for a message its transport could
// not deliver (jsonrpc2.ErrRejected, a JSON-RPC error by its type but not
// an answer from the server).
var errRejected = &jsonrpc.Error{Code: -32005}

// serverError reports whether err is the server's JSON-RPC error answer.
func serverError(err error) bool {
	_, ok := errors.AsType[*jsonrpc.Error](err)
	return ok && !errors.Is(err, errRejected)
}

// healthCheck pings c's server and retires c if it does not answer.
func (p *Pool) healthCheck(c *conn) {
	ctx, cancel := context.WithTimeout(p.ctx, min(pingTimeoutMax, p.opts.CallTimeout))
	defer cancel()
	if _, err := await(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, c.cs.Ping(ctx, nil) }, nil); err != nil {
		p.retire(c)
	}
}

// timeoutError is the cause given to a context bounded by a named timeout.
func timeoutError(name string, d time.Duration) error {
	return fmt.Errorf("%w: no answer within %s (%v)", ErrTimeout, name, d)
}

// await runs f in a goroutine and returns its result, or ctx's cause as
// soon as ctx ends, whether or not f has returned: a server can hold an
// SDK call past its context (a stdio server that stops reading its input
// blocks the write). A successful result f returns after that is passed
// to late, if it is not nil, to be disposed of.
func await[T any](ctx context.Context, f func(context.Context) (T, error), late func(T)) (T, error) {
	var (
		mu        sync.Mutex
		v         T
		err       error
		finished  bool
		abandoned bool
		done      = make(chan struct{})
	)
	go func() {
		rv, rerr := f(ctx)
		mu.Lock()
		if abandoned {
			mu.Unlock()
			if rerr == nil && late != nil {
				late(rv)
			}
			return
		}
		v, err, finished = rv, rerr, true
		mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return v, err
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return v, err
		}
		abandoned = true
		var zero T
		return zero, context.Cause(ctx)
	}
}
