package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Archival memory: passages in the agent's KV space.
//
// Layout (keys relative to the agent's KV space):
//
//	("p", passageID)                 -> the Passage, JSON
//	("pt", createdNanos, passageID)  -> empty: the creation-order index
//
// Passage IDs are random, so ("p", id) gives O(log n) lookup by ID but no
// useful order; the ("pt", …) entry orders passages by creation time (ties
// by ID) for listing and cursors. Both are written and deleted in the same
// invocation, hence the same transaction, so the index never disagrees with
// the passages. A cursor (a passage ID) is resolved with one Get of its
// passage, whose CreatedAt rebuilds its index key: O(log n). Deleting the
// agent clears its whole KV space, passages and index alike.
//
// A passage's text is also its key's full-text document
// (Context.SetWithText), so a store with a full-text engine (SQLite FTS5,
// PostgreSQL tsvector) indexes it in the same transaction. A text query is
// answered from that index when there is one (searchIndexed). Otherwise,
// and for a query embedding, search reads the ("p", …) range in pages of
// storage.ScanLimitMax, at most PassagesMax passages, ranks them
// (search.go) keeping only small per-passage statistics, then fetches the
// top_k winners by ID.

// Archival limits.
const (
	// PassagesMax bounds the passages of one agent; an insert beyond it
	// fails with ErrInvalid. It also bounds what one search or filtered
	// list reads.
	PassagesMax = 100000
	// PassagesPageMax bounds one page of OpArchivalList.
	PassagesPageMax = 1000
)

// passageTimeMax is the latest creation time the index can order
// (the largest int64 nanosecond count, in 2262).
var passageTimeMax = time.Unix(0, math.MaxInt64).UTC()

// PassageTimeKey is the creation-order index entry of a passage.
func PassageTimeKey(p *Passage) []byte {
	return tuple.Pack("pt", uint64(p.CreatedAt.UnixNano()), p.ID)
}

// PassageTimePrefix is the prefix of every PassageTimeKey.
func PassageTimePrefix() tuple.Key { return tuple.Pack("pt") }

// InsertPassageRequest adds one passage.
type InsertPassageRequest struct {
	Text string   `json:"text"`
	Tags []string `json:"tags,omitempty"`
	// CreatedAt backdates the passage (default: now). It must lie between
	// 1970 and 2262.
	CreatedAt *time.Time `json:"created_at,omitempty"`
	// Embedding is the passage's embedding, if the caller computed one.
	Embedding []float32 `json:"embedding,omitempty"`
	// EmbeddingModel is the model that computed Embedding; it must be the
	// agent's embedding model (see EmbeddingModelError).
	EmbeddingModel string `json:"embedding_model,omitempty"`
}

// ListPassagesRequest pages through the passages in creation order.
type ListPassagesRequest struct {
	// After and Before are passage IDs bounding the page (exclusive), in
	// the listing order: with Descending, "after" means older.
	After  string `json:"after,omitempty"`
	Before string `json:"before,omitempty"`
	// Limit bounds the page, 1..PassagesPageMax.
	Limit int `json:"limit"`
	// Descending lists the newest first (Letta's ascending=false).
	Descending bool `json:"descending,omitempty"`
	// Search, if set, keeps only passages whose text contains it,
	// case-insensitively.
	Search string `json:"search,omitempty"`
}

// DeletePassageRequest deletes one passage.
type DeletePassageRequest struct {
	ID string `json:"id"`
}

func agentNotFound(c *actor.Context[State]) error {
	return fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
}

// insertPassage validates and stores a passage with its index entry. The
// built-in archival_memory_insert tool uses it too.
func insertPassage(c *actor.Context[State], req *InsertPassageRequest) (*Passage, error) {
	ag := c.State.Agent
	if ag == nil {
		return nil, agentNotFound(c)
	}
	if ag.PassageCount >= PassagesMax {
		return nil, invalidf("archival memory holds %d passages, the limit", ag.PassageCount)
	}
	if req.Text == "" {
		return nil, invalidf("passage text is empty")
	}
	if err := checkText("passage text", req.Text, PassageBytesMax); err != nil {
		return nil, err
	}
	if err := checkTags(req.Tags); err != nil {
		return nil, err
	}
	if err := checkPassageEmbedding(ag, req); err != nil {
		return nil, err
	}
	created := c.Now().UTC()
	if req.CreatedAt != nil {
		created = req.CreatedAt.UTC()
	}
	if created.Before(time.Unix(0, 0)) || created.After(passageTimeMax) {
		return nil, invalidf("created_at %s outside 1970..2262", created.Format(time.RFC3339))
	}
	var tags []string
	for _, t := range req.Tags {
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	p := &Passage{
		ID: rt.NewID(c.Runtime().Rand("ids"), "passage"), Text: req.Text, Tags: tags,
		CreatedAt: created, Embedding: slices.Clone(req.Embedding), EmbeddingModel: req.EmbeddingModel,
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if err := c.SetWithText(PassageKey(p.ID), b, p.Text); err != nil {
		return nil, err
	}
	if err := c.Set(PassageTimeKey(p), nil); err != nil {
		return nil, err
	}
	if ag.PassageCount == 0 {
		ag.PassagesIndexed = true // nothing older to miss
	}
	ag.PassageCount++
	if len(p.Embedding) > 0 {
		ag.EmbeddingDim = len(p.Embedding)
	}
	return p, nil
}

// getPassage reads one passage, or ErrNotFound.
func getPassage(ctx context.Context, c *actor.Context[State], id string) (*Passage, error) {
	v, err := c.Get(ctx, PassageKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: passage %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var p Passage
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("%w: passage %s: %v", storage.ErrCorrupt, id, err)
	}
	return &p, nil
}

func deletePassage(ctx context.Context, c *actor.Context[State], id string) error {
	ag := c.State.Agent
	if ag == nil {
		return agentNotFound(c)
	}
	p, err := getPassage(ctx, c, id)
	if err != nil {
		return err
	}
	if err := c.Delete(PassageKey(id)); err != nil {
		return err
	}
	if err := c.Delete(PassageTimeKey(p)); err != nil {
		return err
	}
	if ag.PassageCount > 0 {
		ag.PassageCount--
	}
	return nil
}

// listPassages walks the creation-order index. Without a search filter it
// reads exactly the page; with one it reads index pages until the page is
// full, the range ends or PassagesMax entries were examined.
func listPassages(ctx context.Context, c *actor.Context[State], req *ListPassagesRequest) ([]Passage, error) {
	if c.State.Agent == nil {
		return nil, agentNotFound(c)
	}
	if req.Limit <= 0 || req.Limit > PassagesPageMax {
		return nil, invalidf("limit %d outside 1..%d", req.Limit, PassagesPageMax)
	}
	if err := checkText("search", req.Search, SearchQueryBytesMax); err != nil {
		return nil, err
	}
	// [lo, hi) in creation order.
	prefix := PassageTimePrefix()
	lo, hi := []byte(prefix), []byte(prefix.End())
	for _, cur := range []struct {
		id    string
		after bool
	}{{req.After, true}, {req.Before, false}} {
		if cur.id == "" {
			continue
		}
		p, err := getPassage(ctx, c, cur.id)
		if err != nil {
			return nil, err
		}
		key := PassageTimeKey(p)
		if cur.after != req.Descending { // later in time than the cursor
			lo = maxKey(lo, append(bytes.Clone(key), 0))
		} else {
			hi = minKey(hi, key)
		}
	}
	out := make([]Passage, 0, min(req.Limit, 64))
	for examined := 0; len(out) < req.Limit && examined < PassagesMax && bytes.Compare(lo, hi) < 0; {
		page := req.Limit - len(out)
		if req.Search != "" {
			page = storage.ScanLimitMax
		}
		page = min(page, PassagesMax-examined)
		kvs, err := c.Scan(ctx, storage.ScanOptions{Start: lo, End: hi, Reverse: req.Descending, Limit: page})
		if err != nil {
			return nil, err
		}
		examined += len(kvs)
		for _, kv := range kvs {
			elems, err := tuple.Unpack(kv.Key)
			if err != nil || len(elems) != 3 {
				return nil, fmt.Errorf("%w: passage index key %q", storage.ErrCorrupt, kv.Key)
			}
			id, _ := elems[2].(string)
			p, err := getPassage(ctx, c, id)
			if errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("%w: passage index entry %s has no passage", storage.ErrCorrupt, id)
			}
			if err != nil {
				return nil, err
			}
			if req.Search != "" && !containsFold(p.Text, req.Search) {
				continue
			}
			if len(out) < req.Limit {
				out = append(out, *p)
			}
		}
		if len(kvs) < page {
			break
		}
		last := kvs[len(kvs)-1].Key
		if req.Descending {
			hi = bytes.Clone(last)
		} else {
			lo = append(bytes.Clone(last), 0)
		}
	}
	return out, nil
}

func maxKey(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}

func minKey(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

// searchPassages ranks the agent's passages (see search.go). A text query
// on a store with a full-text engine, for an agent whose passages are all
// indexed (Agent.PassagesIndexed), is answered from the engine's index
// (searchIndexed); otherwise one pass over at most PassagesMax passages in
// pages of storage.ScanLimitMax ranks them here. Either way, one Get per
// result follows.
func searchPassages(ctx context.Context, c *actor.Context[State], req *SearchRequest) (*SearchResponse, error) {
	if c.State.Agent == nil {
		return nil, agentNotFound(c)
	}
	if err := checkSearch(req); err != nil {
		return nil, err
	}
	if err := checkEmbeddingModel(c.State.Agent, req.EmbeddingModel); err != nil {
		return nil, err
	}
	if words := queryWords(req.Query); len(req.QueryEmbedding) == 0 && len(words) > 0 && c.State.Agent.PassagesIndexed {
		resp, err := searchIndexed(ctx, c, req, words)
		if !errors.Is(err, errors.ErrUnsupported) {
			return resp, err
		}
	}
	s := newSearcher(req)
	prefix := PassagePrefix()
	start, end := []byte(prefix), []byte(prefix.End())
	for examined := 0; examined < PassagesMax; {
		page := min(storage.ScanLimitMax, PassagesMax-examined)
		kvs, err := c.Scan(ctx, storage.ScanOptions{Start: start, End: end, Limit: page})
		if err != nil {
			return nil, err
		}
		examined += len(kvs)
		for _, kv := range kvs {
			var p Passage
			if err := json.Unmarshal(kv.Value, &p); err != nil {
				return nil, fmt.Errorf("%w: passage %q: %v", storage.ErrCorrupt, kv.Key, err)
			}
			s.add(&p)
		}
		if len(kvs) < page {
			break
		}
		start = append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
	}
	top, ranking := s.rank()
	resp := &SearchResponse{Results: make([]SearchResult, 0, len(top)), Ranking: ranking}
	for _, r := range top {
		p, err := getPassage(ctx, c, r.id)
		if err != nil {
			return nil, err
		}
		resp.Results = append(resp.Results, SearchResult{Passage: *p, Score: r.score})
	}
	return resp, nil
}

// searchIndexed answers a text query from the storage engine's full-text
// index (errors.ErrUnsupported if it has none), best first as the engine
// ranks. The index holds committed passages only: one inserted earlier in
// this same invocation is not found (the model sees it from its next step
// on).
func searchIndexed(ctx context.Context, c *actor.Context[State], req *SearchRequest, words []string) (*SearchResponse, error) {
	prefix := PassagePrefix()
	return collectHits(req,
		func(limit int) ([]storage.TextHit, string, error) {
			return c.SearchText(ctx, storage.TextSearchOptions{Start: prefix, End: prefix.End(), Terms: words, Limit: limit})
		},
		func(key []byte) (*Passage, string, error) {
			id, err := passageIDOf(key)
			if err != nil {
				return nil, "", err
			}
			p, err := getPassage(ctx, c, id)
			if errors.Is(err, ErrNotFound) {
				return nil, "", nil // deleted earlier in this invocation
			}
			return p, "", err
		})
}

// collectHits turns a full-text engine's hits into at most req.TopK
// results, in the engine's order. fetch reads the passage a hit's key
// names, with its agent's ID if known (nil: skip the hit). The tag and
// date filters apply to the fetched passages, so when they reject hits
// the engine is asked again for more, up to storage.TextHitsMax.
func collectHits(req *SearchRequest, search func(limit int) ([]storage.TextHit, string, error), fetch func(key []byte) (*Passage, string, error)) (*SearchResponse, error) {
	limit := req.TopK
	if req.filtered() {
		limit = min(req.TopK*indexedOverfetch, storage.TextHitsMax)
	}
	for {
		hits, ranking, err := search(limit)
		if err != nil {
			return nil, err
		}
		resp := &SearchResponse{Results: make([]SearchResult, 0, min(len(hits), req.TopK)), Ranking: ranking}
		for _, h := range hits {
			p, agentID, err := fetch(h.Key)
			if err != nil {
				return nil, err
			}
			if p != nil && req.keep(p) {
				resp.Results = append(resp.Results, SearchResult{Passage: *p, Score: h.Score, AgentID: agentID})
			}
			if len(resp.Results) == req.TopK {
				break
			}
		}
		if len(resp.Results) == req.TopK || len(hits) < limit || limit == storage.TextHitsMax {
			return resp, nil
		}
		limit = min(limit*indexedOverfetch, storage.TextHitsMax)
	}
}

// indexedOverfetch is how many more hits searchIndexed asks for, each
// round, when filters may reject some.
const indexedOverfetch = 8

// passageIDOf parses a passage key ("p", id).
func passageIDOf(key []byte) (string, error) {
	elems, err := tuple.Unpack(key)
	if err == nil && len(elems) == 2 && elems[0] == "p" {
		if id, ok := elems[1].(string); ok {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: passage key %q", storage.ErrCorrupt, key)
}

// Built-in tool helpers.

// searchToolRequest reads the archival_memory_search tool's arguments.
func searchToolRequest(args map[string]any) (*SearchRequest, error) {
	query, err := stringArg(args, "query")
	if err != nil {
		return nil, err
	}
	req := &SearchRequest{Query: query}
	if req.Tags, err = stringsArg(args, "tags"); err != nil {
		return nil, err
	}
	if v, ok := args["tag_match_mode"]; ok && v != nil {
		if req.TagMatchMode, ok = v.(string); !ok {
			return nil, fmt.Errorf("argument %q must be a string", "tag_match_mode")
		}
	}
	if v, ok := args["top_k"]; ok && v != nil {
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) || f < 1 || f > SearchTopKMax {
			return nil, fmt.Errorf("argument %q must be an integer in 1..%d", "top_k", SearchTopKMax)
		}
		req.TopK = int(f)
	}
	for _, d := range []struct {
		name string
		dst  **time.Time
	}{{"start_datetime", &req.StartDatetime}, {"end_datetime", &req.EndDatetime}} {
		v, ok := args[d.name]
		if !ok || v == nil || v == "" {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("argument %q must be a string", d.name)
		}
		tm, err := ParseDatetime(s)
		if err != nil {
			return nil, fmt.Errorf("argument %q: %v", d.name, err)
		}
		*d.dst = &tm
	}
	return req, nil
}

// searchToolResult renders results as the tool returns them (Letta's
// shape): a JSON list of {"timestamp", "content", "tags"}, best first.
func searchToolResult(resp *SearchResponse) (string, error) {
	type hit struct {
		Timestamp string   `json:"timestamp"`
		Content   string   `json:"content"`
		Tags      []string `json:"tags"`
	}
	out := make([]hit, 0, len(resp.Results))
	for _, r := range resp.Results {
		out = append(out, hit{Timestamp: r.Passage.CreatedAt.UTC().Format(time.RFC3339), Content: r.Passage.Text, Tags: nonNil(r.Passage.Tags)})
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// stringsArg reads an optional list-of-strings argument.
func stringsArg(args map[string]any, name string) ([]string, error) {
	v, ok := args[name]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("argument %q must be a list of strings", name)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("argument %q must be a list of strings", name)
		}
		out = append(out, s)
	}
	return out, nil
}

// ParseDatetime reads a datetime as Letta's API accepts it: RFC 3339
// (with or without fractional seconds), or without a zone, or a bare date;
// a time without a zone is UTC.
func ParseDatetime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 datetime", s)
}
