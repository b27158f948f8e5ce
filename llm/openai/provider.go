package openai

import (
	"context"
	"sync"
	"time"

	"github.com/kelpie-ai/kelpie/llm"
)

// Model-list cache lifetimes: a list is refreshed (in the background,
// the old one served meanwhile) after modelListFresh; a failed fetch is
// not repeated for modelListRetry, so an unreachable server costs one
// ModelListTimeout per modelListRetry at most.
const (
	modelListFresh = 5 * time.Minute
	modelListRetry = 30 * time.Second
)

// NewProvider is the llm.ProviderFactory of the "openai" type: a Client
// for cfg, the models cfg names (the first is the default model), and the
// server's own list, fetched in the background from now on and cached
// (see ModelLister).
func NewProvider(cfg llm.ProviderConfig) (llm.Provider, error) {
	c, err := New(Config{Name: cfg.Name, BaseURL: cfg.BaseURL, APIKey: cfg.APIKey})
	if err != nil {
		return llm.Provider{}, err
	}
	p := llm.Provider{Name: cfg.Name, Type: llm.ProviderTypeOpenAI, BaseURL: cfg.BaseURL, Client: c}
	for _, m := range cfg.Models {
		p.Models = append(p.Models, llm.ModelInfo{Model: m, ProviderType: llm.ProviderTypeOpenAI})
	}
	if len(cfg.Models) > 0 {
		p.DefaultModel = cfg.Models[0]
	}
	lister := NewModelLister(c.ListModels)
	lister.Prefetch()
	p.ListModels = lister.Models
	return p, nil
}

// ModelLister caches a model list: Models answers from the cache, fetching
// only when there is nothing to serve, and never more than one fetch at a
// time. Fetches run with a background context (fetch must bound its own
// time, as Client.ListModels does), so a caller that gives up does not
// abort the fetch others wait for.
type ModelLister struct {
	fetch func(context.Context) ([]llm.ModelInfo, error)

	mu       sync.Mutex
	models   []llm.ModelInfo
	have     bool      // a fetch has succeeded
	err      error     // the last fetch's error
	at       time.Time // when the last fetch ended
	inflight chan struct{}
}

// NewModelLister returns a ModelLister over fetch.
func NewModelLister(fetch func(context.Context) ([]llm.ModelInfo, error)) *ModelLister {
	return &ModelLister{fetch: fetch}
}

// Prefetch starts a fetch in the background unless one is running.
func (l *ModelLister) Prefetch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.startLocked()
}

// startLocked starts a background fetch unless one is running, and
// returns the channel closed when the running fetch ends. l.mu is held.
func (l *ModelLister) startLocked() chan struct{} {
	if l.inflight != nil {
		return l.inflight
	}
	done := make(chan struct{})
	l.inflight = done
	go func() {
		models, err := l.fetch(context.Background())
		l.mu.Lock()
		defer l.mu.Unlock()
		l.at, l.err = time.Now(), err
		if err == nil {
			l.models, l.have = models, true
		}
		l.inflight = nil
		close(done)
	}()
	return done
}

// Models returns the cached list. A stale list is served while a refresh
// runs in the background; with no list yet it waits for a fetch (or ctx)
// unless one failed less than modelListRetry ago, whose error it returns.
func (l *ModelLister) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	l.mu.Lock()
	if l.have {
		if time.Since(l.at) > modelListFresh {
			l.startLocked()
		}
		models := append([]llm.ModelInfo(nil), l.models...)
		l.mu.Unlock()
		return models, nil
	}
	if l.err != nil && l.inflight == nil && time.Since(l.at) < modelListRetry {
		err := l.err
		l.mu.Unlock()
		return nil, err
	}
	done := l.startLocked()
	l.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.have {
		return append([]llm.ModelInfo(nil), l.models...), nil
	}
	return nil, l.err
}
