package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Search across agents (Letta's POST /v1/passages/search without an agent):
// read from committed storage, without activating any agent.

// StoredPassagesMax bounds the passages SearchStored ranks itself when the
// store has no full-text engine (or the query carries an embedding); past
// it the search stops and reports Partial.
const StoredPassagesMax = 1_000_000

// SearchStored ranks the passages of every agent as they are committed in
// storage, read through tx (which the caller rolls back: the reads are not
// a snapshot, so a passage written or deleted meanwhile may or may not be
// seen). A text query on a store with a full-text engine is answered from
// its index over all agents' passages at once. Otherwise the agents are
// walked in creation order and their passages ranked here, with corpus
// statistics over all of them, up to StoredPassagesMax passages. Each
// result names its agent.
func SearchStored(ctx context.Context, tx *storage.Txn, req SearchRequest) (*SearchResponse, error) {
	if err := checkSearch(&req); err != nil {
		return nil, err
	}
	space := tuple.Pack("a", Namespace)
	if words := queryWords(req.Query); len(req.QueryEmbedding) == 0 && len(words) > 0 {
		resp, err := collectHits(&req,
			func(limit int) ([]storage.TextHit, string, error) {
				return tx.SearchText(ctx, storage.TextSearchOptions{Start: space, End: space.End(), Terms: words, Limit: limit})
			},
			func(key []byte) (*Passage, string, error) { return storedPassage(ctx, tx, key) })
		if !errors.Is(err, errors.ErrUnsupported) {
			return resp, err
		}
	}
	s := newSearcher(&req)
	examined, partial := 0, false
	err := forEachStoredAgent(ctx, tx, func(agentID string) (bool, error) {
		s.agent = agentID
		prefix := append(ActorID(agentID).KVPrefix(), PassagePrefix()...)
		start, end := []byte(prefix), []byte(prefix.End())
		for {
			if examined == StoredPassagesMax {
				partial = true
				return false, nil
			}
			page := min(storage.ScanLimitMax, StoredPassagesMax-examined)
			kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: start, End: end, Limit: page})
			if err != nil {
				return false, err
			}
			examined += len(kvs)
			for _, kv := range kvs {
				var p Passage
				if err := json.Unmarshal(kv.Value, &p); err != nil {
					return false, fmt.Errorf("%w: passage %q: %v", storage.ErrCorrupt, kv.Key, err)
				}
				s.add(&p)
			}
			if len(kvs) < page {
				return true, nil
			}
			start = append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
		}
	})
	if err != nil {
		return nil, err
	}
	top, ranking := s.rank()
	resp := &SearchResponse{Results: make([]SearchResult, 0, len(top)), Ranking: ranking, Partial: partial}
	for _, r := range top {
		p, agentID, err := storedPassage(ctx, tx, append(ActorID(r.agent).KVPrefix(), PassageKey(r.id)...))
		if err != nil {
			return nil, err
		}
		if p != nil {
			resp.Results = append(resp.Results, SearchResult{Passage: *p, Score: r.score, AgentID: agentID})
		}
	}
	return resp, nil
}

// forEachStoredAgent calls fn with the ID of every agent in the creation
// index, oldest first, until fn returns false or an error.
func forEachStoredAgent(ctx context.Context, tx *storage.Txn, fn func(agentID string) (bool, error)) error {
	prefix := ByCreatedPrefix()
	start, end := []byte(prefix), []byte(prefix.End())
	for {
		kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: start, End: end, Limit: storage.ScanLimitMax})
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			elems, err := tuple.Unpack(kv.Key[len(prefix):])
			if err != nil || len(elems) != 2 {
				return fmt.Errorf("%w: index key %q", storage.ErrCorrupt, kv.Key)
			}
			id, _ := elems[1].(string)
			if more, err := fn(id); err != nil || !more {
				return err
			}
		}
		if len(kvs) < storage.ScanLimitMax {
			return nil
		}
		start = append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
	}
}

// storedPassage reads the passage at an absolute key ("a", Namespace,
// agentID, "kv", "p", passageID) and returns it with its agent's ID; nil if
// the key names no passage (deleted since, or not a passage key).
func storedPassage(ctx context.Context, tx *storage.Txn, key []byte) (*Passage, string, error) {
	elems, err := tuple.Unpack(key)
	if err != nil || len(elems) != 6 || elems[0] != "a" || elems[1] != Namespace || elems[3] != "kv" || elems[4] != "p" {
		return nil, "", nil
	}
	agentID, _ := elems[2].(string)
	if _, ok := elems[5].(string); !ok {
		return nil, "", nil
	}
	v, err := tx.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	var p Passage
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, "", fmt.Errorf("%w: passage %q: %v", storage.ErrCorrupt, key, err)
	}
	return &p, agentID, nil
}
