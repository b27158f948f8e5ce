package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// conceptEmbedder is a fake embedding model that knows a few synonyms:
// words of one concept share a dimension, so "feline" lands near a text
// about a cat though they share no word. Other words are hashed, lightly,
// into the remaining dimensions. It records its calls and fails with
// fail when that is set.
type conceptEmbedder struct {
	mu    sync.Mutex
	fail  error
	calls [][]string
}

const conceptDims = 16

var concepts = map[string]int{
	"cat": 0, "cats": 0, "feline": 0, "kitten": 0,
	"dog": 1, "dogs": 1, "canine": 1, "puppy": 1,
	"tea": 2, "coffee": 2, "drink": 2, "drinks": 2,
}

func conceptVector(text string) []float32 {
	v := make([]float64, conceptDims)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) }) {
		if d, ok := concepts[w]; ok {
			v[d] += 1
			continue
		}
		h := fnv.New32a()
		h.Write([]byte(w))
		v[3+int(h.Sum32()%(conceptDims-3))] += 0.2
	}
	var sq float64
	for _, x := range v {
		sq += x * x
	}
	out := make([]float32, conceptDims)
	for i, x := range v {
		out[i] = float32(x / math.Sqrt(max(sq, 1e-9)))
	}
	return out
}

func (e *conceptEmbedder) Embed(ctx context.Context, req llm.EmbedRequest) (*llm.EmbedResponse, error) {
	if err := req.Check("fake"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, append([]string(nil), req.Inputs...))
	if e.fail != nil {
		return nil, e.fail
	}
	out := &llm.EmbedResponse{}
	for _, in := range req.Inputs {
		out.Vectors = append(out.Vectors, conceptVector(in))
	}
	return out, nil
}

func (e *conceptEmbedder) setFail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail = err
}

func (e *conceptEmbedder) callLog() [][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][]string(nil), e.calls...)
}

// Complete and CompleteStream make it a provider client; they are not used.
func (e *conceptEmbedder) Complete(context.Context, llm.Request) (*llm.Response, error) {
	return nil, errors.New("not a chat model")
}

func (e *conceptEmbedder) CompleteStream(context.Context, llm.Request, func(llm.Delta) error) (*llm.Response, error) {
	return nil, errors.New("not a chat model")
}

// chatOnly is a provider client without embeddings (like Anthropic's).
type chatOnly struct{}

func (chatOnly) Complete(context.Context, llm.Request) (*llm.Response, error) {
	return llmtest.Text("hi"), nil
}

func (chatOnly) CompleteStream(context.Context, llm.Request, func(llm.Delta) error) (*llm.Response, error) {
	return llmtest.Text("hi"), nil
}

const conceptModel = "fake/concepts"

// newEmbedEnv is newEnv with a router over a conceptEmbedder ("fake") and
// a provider without embeddings ("anthropic") as the embedder.
func newEmbedEnv(t testing.TB, store storage.Store, model llm.Client, opts ...service.Option) (*env, *conceptEmbedder) {
	t.Helper()
	r := rt.NewSystem()
	if store == nil {
		store = memory.New()
	}
	if model == nil {
		model = llmtest.Echo()
	}
	emb := &conceptEmbedder{}
	router := llm.NewRouter(
		llm.Provider{Name: "fake", Type: llm.ProviderTypeOpenAI, Client: emb},
		llm.Provider{Name: "anthropic", Type: llm.ProviderTypeAnthropic, Client: chatOnly{}, DefaultModel: "claude"},
	)
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: slog.New(slog.DiscardHandler)})
	svc, err := service.New(r, store, sys, model, append([]service.Option{service.WithEmbedder(router)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	return &env{svc: svc, sys: sys, store: store}, emb
}

var catPassages = []string{
	"Ada's cat is called Pixel and sleeps all day",
	"Ada's dog Rex barks at the postman",
	"Ada drinks green tea every morning",
}

func TestEmbeddingSearch(t *testing.T) {
	store := memory.New()
	e, emb := newEmbedEnv(t, store, nil)
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "semantic", Embedding: conceptModel})
	if err != nil {
		t.Fatal(err)
	}
	if ag.Embedding != conceptModel {
		t.Fatalf("embedding = %q", ag.Embedding)
	}
	var ids []string
	for _, text := range catPassages {
		p, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Embedding) != conceptDims || p.EmbeddingModel != conceptModel {
			t.Fatalf("passage stored with embedding %v by %q", p.Embedding, p.EmbeddingModel)
		}
		ids = append(ids, p.ID)
	}
	res, err := e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "feline", TopK: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ranking != agent.RankingCosine || len(res.Results) != 3 || res.Results[0].Passage.ID != ids[0] || res.Results[0].Score < 0.8 {
		t.Fatalf("search for feline = %+v", res)
	}
	// One embedding call per insert and per search; none for a blank query.
	if n := len(emb.callLog()); n != 4 {
		t.Errorf("%d embedding calls, want 4", n)
	}
	res, err = e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "  "})
	if err != nil || res.Ranking != agent.RankingRecency || len(emb.callLog()) != 4 {
		t.Fatalf("blank query: %+v, %v, %d calls", res, err, len(emb.callLog()))
	}
	got, err := e.svc.GetAgent(ctx, ag.ID)
	if err != nil || got.EmbeddingDim != conceptDims {
		t.Fatalf("agent after inserts: dim %d, %v", got.EmbeddingDim, err)
	}

	// A second service over the same store does not know the agent's
	// model: its first guess (none) is corrected by the actor.
	if err := e.sys.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	e2, emb2 := newEmbedEnv(t, store, nil)
	res, err = e2.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "a canine", TopK: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ranking != agent.RankingCosine || res.Results[0].Passage.ID != ids[1] {
		t.Fatalf("search for canine on a fresh service = %+v", res)
	}
	if calls := emb2.callLog(); len(calls) != 1 || calls[0][0] != "a canine" {
		t.Errorf("fresh service embedded %v", calls)
	}
	p, err := e2.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: "a kitten named Byte"})
	if err != nil || p.EmbeddingModel != conceptModel {
		t.Fatalf("insert on the fresh service: %+v, %v", p, err)
	}
}

func TestEmbeddingModelChoice(t *testing.T) {
	e, _ := newEmbedEnv(t, nil, nil, service.WithDefaultEmbedding(conceptModel))
	if e.svc.DefaultEmbedding() != conceptModel {
		t.Fatalf("DefaultEmbedding = %q", e.svc.DefaultEmbedding())
	}
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "defaulted"})
	if err != nil || ag.Embedding != conceptModel {
		t.Fatalf("default not applied: %+v, %v", ag, err)
	}
	ag, err = e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "own", Embedding: "fake/other"})
	if err != nil || ag.Embedding != "fake/other" {
		t.Fatalf("explicit model: %+v, %v", ag, err)
	}

	// Handles no provider can embed with are refused at create and update.
	for _, handle := range []string{"anthropic/claude-sonnet-4-5", "mistral/embed", "fake/"} {
		_, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "bad", Embedding: handle})
		if llm.HTTPStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), handle) {
			t.Errorf("create with %q: %v (status %d), want a 400 naming it", handle, err, llm.HTTPStatus(err))
		}
		_, err = e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{Embedding: &handle})
		if llm.HTTPStatus(err) != http.StatusBadRequest {
			t.Errorf("update to %q: %v", handle, err)
		}
	}
	long := "fake/" + strings.Repeat("x", agent.EmbeddingHandleBytesMax)
	if _, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Embedding: long}); !errors.Is(err, agent.ErrInvalid) {
		t.Errorf("over-long handle: %v", err)
	}

	// Updating the model: the passages embedded with the old one are not
	// compared with queries embedded with the new one.
	if _, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: catPassages[0]}); err != nil {
		t.Fatal(err)
	}
	none := ""
	ag, err = e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{Embedding: &none})
	if err != nil || ag.Embedding != "" || ag.EmbeddingDim != 0 {
		t.Fatalf("update to no model: %+v, %v", ag, err)
	}
	res, err := e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "cat"})
	if err != nil || res.Ranking == agent.RankingCosine || len(res.Results) != 1 {
		t.Fatalf("full-text search after dropping the model: %+v, %v", res, err)
	}
	p, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: "no vector now"})
	if err != nil || len(p.Embedding) != 0 || p.EmbeddingModel != "" {
		t.Fatalf("insert without a model: %+v, %v", p, err)
	}
}

// A server without any model provider accepts an embedding handle at
// create (as it does a chat model) and fails inserts naming what to set.
func TestEmbeddingUnconfigured(t *testing.T) {
	e := newEnv(t, nil, nil)
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Embedding: "openai/text-embedding-3-small"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: "x"})
	if !errors.Is(err, llm.ErrNotConfigured) || llm.HTTPStatus(err) != http.StatusBadRequest {
		t.Fatalf("insert = %v", err)
	}
	// Without a model, nothing is embedded and nothing fails.
	plain := e.create(t, "plain")
	if _, err := e.svc.InsertPassage(ctx, plain.ID, agent.InsertPassageRequest{Text: "x"}); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddingFailureStoresNothing(t *testing.T) {
	e, emb := newEmbedEnv(t, nil, nil)
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Embedding: conceptModel})
	if err != nil {
		t.Fatal(err)
	}
	emb.setFail(&llm.APIError{Provider: "fake", Status: http.StatusTooManyRequests, Message: "slow down"})
	_, err = e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: "a cat"})
	if llm.HTTPStatus(err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "slow down") {
		t.Fatalf("insert = %v (status %d)", err, llm.HTTPStatus(err))
	}
	_, err = e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "cat"})
	if llm.HTTPStatus(err) != http.StatusTooManyRequests {
		t.Fatalf("search = %v", err)
	}
	got, _ := e.svc.GetAgent(ctx, ag.ID)
	list, _ := e.svc.ListPassages(ctx, ag.ID, agent.ListPassagesRequest{Limit: 10})
	if got.PassageCount != 0 || len(list) != 0 {
		t.Fatalf("stored after a failed embedding: count %d, list %v", got.PassageCount, list)
	}
	// Texts the insert refuses fail for that reason, without an embedding call.
	emb.setFail(nil)
	before := len(emb.callLog())
	if _, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: ""}); !errors.Is(err, agent.ErrInvalid) {
		t.Errorf("empty text: %v", err)
	}
	if _, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: strings.Repeat("x", agent.PassageBytesMax+1)}); !errors.Is(err, agent.ErrInvalid) {
		t.Errorf("long text: %v", err)
	}
	if n := len(emb.callLog()); n != before {
		t.Errorf("%d embedding calls for refused texts", n-before)
	}
}

// archivist scripts a model that, on the user's message, stores two
// memories in one answer, then searches for "feline", then ends its turn.
func archivist() *llmtest.Script {
	return &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		steps := 0
		for _, m := range req.Messages {
			if m.Role == llm.RoleAssistant {
				steps++
			}
		}
		call := func(id, tool string, args map[string]any) llm.ToolCall {
			b, _ := json.Marshal(args)
			return llm.ToolCall{ID: id, Name: tool, Arguments: string(b)}
		}
		switch steps % 3 {
		case 0:
			return &llm.Response{Message: llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{
				call("call-a", agent.ToolArchivalMemoryInsert, map[string]any{"content": catPassages[1], "tags": []string{"pets"}}),
				call("call-b", agent.ToolArchivalMemoryInsert, map[string]any{"content": catPassages[0]}),
			}}}, nil
		case 1:
			return &llm.Response{Message: llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{
				call("call-c", agent.ToolArchivalMemorySearch, map[string]any{"query": "feline"}),
			}}}, nil
		}
		return llmtest.Text("done"), nil
	}}
}

func toolReturns(msgs []agent.Message) []agent.Message {
	var out []agent.Message
	for _, m := range msgs {
		if m.Role == llm.RoleTool {
			out = append(out, m)
		}
	}
	return out
}

func TestArchivalToolsEmbedInRuns(t *testing.T) {
	e, emb := newEmbedEnv(t, nil, archivist())
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "tools", Embedding: conceptModel})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "remember my pets"}}})
	if err != nil {
		t.Fatal(err)
	}
	rets := toolReturns(resp.Messages)
	if len(rets) != 3 || rets[0].ToolStatus != agent.ToolSuccess || rets[1].ToolStatus != agent.ToolSuccess || rets[2].ToolStatus != agent.ToolSuccess {
		t.Fatalf("tool returns = %+v", rets)
	}
	var hits []struct{ Content string }
	if err := json.Unmarshal([]byte(rets[2].Content), &hits); err != nil {
		t.Fatalf("search result %q: %v", rets[2].Content, err)
	}
	if len(hits) != 2 || hits[0].Content != catPassages[0] {
		t.Fatalf("archival_memory_search(feline) = %+v, want the cat first (cosine)", hits)
	}
	// One batched call for the step with two inserts, one for the search.
	calls := emb.callLog()
	if len(calls) != 2 || len(calls[0]) != 2 || calls[0][0] != catPassages[1] || calls[1][0] != "feline" {
		t.Fatalf("embedding calls = %q", calls)
	}
	list, _ := e.svc.ListPassages(ctx, ag.ID, agent.ListPassagesRequest{Limit: 10})
	for _, p := range list {
		if len(p.Embedding) != conceptDims || p.EmbeddingModel != conceptModel {
			t.Errorf("passage %q stored with %d dimensions by %q", p.Text, len(p.Embedding), p.EmbeddingModel)
		}
	}
}

func TestArchivalToolEmbeddingFailure(t *testing.T) {
	e, emb := newEmbedEnv(t, nil, archivist())
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Embedding: conceptModel})
	if err != nil {
		t.Fatal(err)
	}
	emb.setFail(&llm.APIError{Provider: "fake", Status: http.StatusServiceUnavailable, Message: "embedding server down"})
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "remember"}}})
	if err != nil {
		t.Fatalf("the run failed: %v", err)
	}
	rets := toolReturns(resp.Messages)
	if len(rets) != 3 || resp.StopReason != agent.StopEndTurn {
		t.Fatalf("returns %+v, stop %s", rets, resp.StopReason)
	}
	for _, r := range rets {
		if r.ToolStatus != agent.ToolError || !strings.Contains(r.Content, "embedding server down") {
			t.Errorf("%s returned %s %q, want an error naming the failure", r.ToolName, r.ToolStatus, r.Content)
		}
	}
	if !strings.Contains(rets[0].Content, "nothing was stored") {
		t.Errorf("insert error %q does not say nothing was stored", rets[0].Content)
	}
	got, _ := e.svc.GetAgent(ctx, ag.ID)
	if got.PassageCount != 0 {
		t.Fatalf("%d passages stored after failed embeddings", got.PassageCount)
	}
}

// An archival call that waited for approval is embedded when the send
// that approves it runs it.
func TestApprovedArchivalCallIsEmbedded(t *testing.T) {
	model := &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		if req.Messages[len(req.Messages)-1].Role == llm.RoleTool {
			return llmtest.Text("ok"), nil
		}
		return llmtest.Call(agent.ToolArchivalMemoryInsert, map[string]any{"content": catPassages[0]}), nil
	}}
	e, emb := newEmbedEnv(t, nil, model)
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Embedding: conceptModel})
	if err != nil {
		t.Fatal(err)
	}
	set := []string{agent.ToolArchivalMemoryInsert}
	if _, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{ApprovalRequired: &set}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "remember"}}})
	if err != nil || resp.StopReason != agent.StopApproval {
		t.Fatalf("first turn: %+v, %v", resp, err)
	}
	// (The driver does not know which calls wait for approval: it may
	// have embedded this one already; the approving send embeds it again.)
	before := len(emb.callLog())
	callID := resp.Messages[len(resp.Messages)-1].ToolCalls[0].ID
	resp, err = e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Approvals: []agent.Approval{{ToolCallID: callID, Approve: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if ret := resp.Messages[0]; ret.ToolStatus != agent.ToolSuccess {
		t.Fatalf("approved insert returned %+v", ret)
	}
	if calls := emb.callLog(); len(calls) != before+1 || calls[before][0] != catPassages[0] {
		t.Fatalf("embedding calls for the approval: %q", calls[before:])
	}
	list, _ := e.svc.ListPassages(ctx, ag.ID, agent.ListPassagesRequest{Limit: 10})
	if len(list) != 1 || len(list[0].Embedding) != conceptDims {
		t.Fatalf("passages after approval: %+v", list)
	}
}
