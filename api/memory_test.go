package api_test

import (
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/tokens"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestCoreMemoryAPI(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "mem")
	body := ok(t, srv, "GET", "/v1/agents/"+a.ID+"/core-memory", nil)
	conform(t, body, "Memory", false)
	m := decodeAs[struct {
		AgentType string `json:"agent_type"`
		Blocks    []struct{ Label, Value string }
	}](t, body)
	if m.AgentType != "letta_v1_agent" || len(m.Blocks) != 2 || m.Blocks[0].Label != "human" || m.Blocks[0].Value != "Name: unknown" {
		t.Fatalf("memory = %s", body)
	}
	fails(t, srv, "GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/core-memory", nil, 404, "not found")
	fails(t, srv, "GET", "/v1/agents/nope/core-memory", nil, 422, "not a valid agent ID")
}

type contextJSON struct {
	Max                  int    `json:"context_window_size_max"`
	Current              int    `json:"context_window_size_current"`
	NumMessages          int    `json:"num_messages"`
	NumArchival          int    `json:"num_archival_memory"`
	NumRecall            int    `json:"num_recall_memory"`
	TokensExternal       int    `json:"num_tokens_external_memory_summary"`
	TokensSystem         int    `json:"num_tokens_system"`
	SystemPrompt         string `json:"system_prompt"`
	TokensCoreMemory     int    `json:"num_tokens_core_memory"`
	CoreMemory           string `json:"core_memory"`
	TokensSummary        int    `json:"num_tokens_summary_memory"`
	TokensFunctions      int    `json:"num_tokens_functions_definitions"`
	TokensMessages       int    `json:"num_tokens_messages"`
	FunctionsDefinitions []struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"functions_definitions"`
	Messages []struct {
		ID      string `json:"id"`
		Role    string `json:"role"`
		Content []struct{ Type, Text string }
	} `json:"messages"`
}

func TestContextWindowAPI(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "ctx")
	path := "/v1/agents/" + a.ID + "/context"
	body := ok(t, srv, "GET", path, nil)
	conform(t, body, "ContextWindowOverview", false)
	empty := decodeAs[contextJSON](t, body)
	if empty.NumMessages != 1 || empty.NumRecall != 0 || empty.Messages[0].Role != "system" || empty.TokensMessages != 0 {
		t.Fatalf("fresh agent: %s", body)
	}

	ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hello there"}}})
	ok(t, srv, "POST", "/v1/agents/"+a.ID+"/archival-memory", map[string]any{"text": "a fact"})
	body = ok(t, srv, "GET", path+"?conversation_id=default", nil)
	conform(t, body, "ContextWindowOverview", false)
	cw := decodeAs[contextJSON](t, body)
	if cw.NumMessages != len(cw.Messages) || cw.NumMessages < 3 || cw.NumRecall != cw.NumMessages-1 || cw.NumArchival != 1 {
		t.Fatalf("counts: %s", body)
	}
	if cw.Messages[1].Role != "user" || cw.Messages[1].Content[0].Text != "hello there" || !strings.HasPrefix(cw.Messages[1].ID, "message-") {
		t.Fatalf("first message in context: %+v", cw.Messages[1])
	}
	if !strings.Contains(cw.CoreMemory, "<human>") || !strings.Contains(cw.Messages[0].Content[0].Text, cw.SystemPrompt+cw.CoreMemory) {
		t.Fatalf("system %q, core memory %q", cw.SystemPrompt, cw.CoreMemory)
	}
	if len(cw.FunctionsDefinitions) == 0 || cw.FunctionsDefinitions[0].Type != "function" || cw.FunctionsDefinitions[0].Function.Name == "" {
		t.Fatalf("functions: %+v", cw.FunctionsDefinitions)
	}
	// Tokens are counted with o200k_base.
	if cw.TokensSystem != tokens.PerMessage+tokens.Count(cw.SystemPrompt) || cw.TokensCoreMemory != tokens.Count(cw.CoreMemory) ||
		cw.TokensMessages == 0 || cw.TokensFunctions == 0 {
		t.Fatalf("token estimates: %s", body)
	}
	// The current size is their sum scaled by the provider's count over
	// Kelpie's for the last step, bounded to [0.5, 3].
	if sum := cw.TokensSystem + cw.TokensCoreMemory + cw.TokensExternal + cw.TokensSummary + cw.TokensFunctions + cw.TokensMessages; cw.Current < sum/2 || cw.Current > 3*sum || cw.Max != 128000 {
		t.Fatalf("current %d, sum %d, max %d", cw.Current, sum, cw.Max)
	}
	fails(t, srv, "GET", path+"?conversation_id=conv-123", nil, 404, "not found")
	fails(t, srv, "GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/context", nil, 404, "not found")
}

// TestNewSchemasBite shows the contract check rejects wrong shapes of the
// schemas these endpoints answer with.
func TestNewSchemasBite(t *testing.T) {
	for ref, bad := range map[string]string{
		"Step":                  `{"id": "step-1", "feedback": "great"}`,
		"StepMetrics":           `{"id": "step-1", "llm_request_ns": "slow"}`,
		"Memory":                `{"agent_type": "letta_v1_agent"}`,
		"ContextWindowOverview": `{"context_window_size_max": 1}`,
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if schema(t, ref).Validate(inst) == nil {
			t.Errorf("%s accepted %s", ref, bad)
		}
	}
}
