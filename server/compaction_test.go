package server

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/fakellm"
	"github.com/kelpie-ai/kelpie/llm/providers"
)

// longConversationTurns is the length of TestLongConversationSmallWindow.
const longConversationTurns = 2000

// An agent on a model with a 4,096-token window (fake-llm enforcing it as
// OpenAI does) takes 2,000 turns, one in ten with a 3 KB tool return,
// and none fails: its window is compacted as it fills.
func TestLongConversationSmallWindow(t *testing.T) {
	const window = 4096
	fake := httptest.NewServer(fakellm.New(fakellm.Options{ContextWindow: window}))
	t.Cleanup(fake.Close)
	env := map[string]string{"OPENAI_BASE_URL": fake.URL + "/v1", "OPENAI_API_KEY": "unused"}
	router, err := providers.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	base := startMCPNodeWith(t, Config{Model: router})

	status, body := apiCall(t, base, "POST", "/v1/agents", map[string]any{"name": "long", "model": "openai/fake-model",
		"memory_blocks": []map[string]any{{"label": "human", "value": "Name: Ada"}}})
	if status != 200 {
		t.Fatalf("create: %d %s", status, body)
	}
	var ag struct {
		ID        string `json:"id"`
		LLMConfig struct {
			ContextWindow int `json:"context_window"`
		} `json:"llm_config"`
	}
	if err := json.Unmarshal(body, &ag); err != nil {
		t.Fatal(err)
	}
	// 3 KB passages, which archival_memory_search returns.
	passage := strings.Repeat("kelpie forests shelter fish ", 110)
	for range 2 {
		if status, body := apiCall(t, base, "POST", "/v1/agents/"+ag.ID+"/archival-memory", map[string]any{"text": passage}); status != 200 {
			t.Fatalf("insert passage: %d %s", status, body)
		}
	}
	for i := range longConversationTurns {
		text := fmt.Sprintf("turn %d: tell me more about the kelp forest, part %d", i, i)
		if i%10 == 5 {
			text = `@tool archival_memory_search {"query": "kelpie forests"}`
		}
		status, body := apiCall(t, base, "POST", "/v1/agents/"+ag.ID+"/messages", map[string]any{
			"messages": []map[string]any{{"role": "user", "content": text}}})
		var resp struct {
			StopReason struct {
				StopReason string `json:"stop_reason"`
			} `json:"stop_reason"`
		}
		if status != 200 || json.Unmarshal(body, &resp) != nil || resp.StopReason.StopReason != "end_turn" {
			t.Fatalf("turn %d: %d %.500s", i, status, body)
		}
	}
	// The window the agent reports is the model's, from its model list.
	status, body = apiCall(t, base, "GET", "/v1/agents/"+ag.ID, nil)
	if status != 200 || json.Unmarshal(body, &ag) != nil || ag.LLMConfig.ContextWindow != window {
		t.Fatalf("agent: %d, llm_config.context_window %d, want %d", status, ag.LLMConfig.ContextWindow, window)
	}
	// Every compaction logged its event; page through the log for them.
	var compactions, before, after, overflows int
	for after0 := ""; ; {
		path := "/v1/agents/" + ag.ID + "/messages?limit=1000&order=asc"
		if after0 != "" {
			path += "&after=" + after0
		}
		status, body := apiCall(t, base, "GET", path, nil)
		var page []struct {
			ID          string `json:"id"`
			MessageType string `json:"message_type"`
			EventData   struct {
				Trigger string `json:"trigger"`
				Before  int    `json:"context_tokens_before"`
				After   int    `json:"context_tokens_after"`
			} `json:"event_data"`
		}
		if status != 200 || json.Unmarshal(body, &page) != nil {
			t.Fatalf("messages: %d %.300s", status, body)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			if m.MessageType == "event_message" {
				compactions++
				before += m.EventData.Before
				after += m.EventData.After
				if m.EventData.Trigger == "context_window_exceeded" {
					overflows++
				}
			}
		}
		after0 = page[len(page)-1].ID
	}
	if compactions == 0 {
		t.Fatal("no compaction in a 4,096-token window")
	}
	t.Logf("%d turns: %d compactions (%.0f per 1,000 turns; %d after a provider refusal), context tokens %d before and %d after on average",
		longConversationTurns, compactions, float64(compactions)*1000/longConversationTurns, overflows, before/compactions, after/compactions)
	status, body = apiCall(t, base, "GET", "/v1/agents/"+ag.ID+"/context", nil)
	var cw struct {
		Max     int     `json:"context_window_size_max"`
		Current int     `json:"context_window_size_current"`
		Summary *string `json:"summary_memory"`
	}
	if status != 200 || json.Unmarshal(body, &cw) != nil || cw.Max != window || cw.Current > window || cw.Summary == nil {
		t.Fatalf("context: %d %.300s", status, body)
	}
}
