package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// sdk1 is what the Letta 1.x SDKs send with every request.
var sdk1 = map[string]string{"X-Stainless-Package-Version": "1.12.1"}

type shapedAgent struct {
	agentJSON
	Memory struct {
		Blocks []struct{ Label string } `json:"blocks"`
	} `json:"memory"`
	PendingApproval *struct {
		ID          string `json:"id"`
		MessageType string `json:"message_type"`
		ToolCall    struct {
			Name       string `json:"name"`
			ToolCallID string `json:"tool_call_id"`
		} `json:"tool_call"`
		ToolCalls []struct {
			ToolCallID string `json:"tool_call_id"`
		} `json:"tool_calls"`
	} `json:"pending_approval"`
}

func getShaped(t *testing.T, srv *httptest.Server, path string, header map[string]string) shapedAgent {
	t.Helper()
	status, body := callWith(t, srv, "GET", path, nil, header)
	if status != 200 {
		t.Fatalf("GET %s = %d %s", path, status, body)
	}
	conform(t, body, "AgentState", false)
	return decodeAs[shapedAgent](t, body)
}

func TestAgentInclude(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "shaped", "red")
	path := "/v1/agents/" + a.ID
	type want struct{ blocks, tools, tags bool }
	for _, tc := range []struct {
		query  string
		header map[string]string
		want   want
	}{
		// Clients other than the 1.x SDKs get every relationship; include
		// cannot narrow that.
		{"", nil, want{true, true, true}},
		{"?include=agent.tags", nil, want{true, true, true}},
		// The 1.x SDKs get only what include names.
		{"", sdk1, want{}},
		{"?include=agent.blocks", sdk1, want{blocks: true}},
		{"?include=agent.tools&include=agent.tags", sdk1, want{tools: true, tags: true}},
		{"?include=agent.sources&include=agent.identities&include=agent.secrets&include=agent.managed_group", sdk1, want{}},
		// include_relationships (legacy names) selects for any client.
		{"?include_relationships=memory", sdk1, want{blocks: true}},
		{"?include_relationships=tools&include_relationships=nonsense", nil, want{tools: true}},
		{"?include_relationships=memory&include=agent.tags", nil, want{blocks: true, tags: true}},
	} {
		got := getShaped(t, srv, path+tc.query, tc.header)
		if (len(got.Blocks) == 2) != tc.want.blocks || (len(got.Memory.Blocks) == 2) != tc.want.blocks ||
			(len(got.Tools) > 0) != tc.want.tools || (len(got.Tags) == 1) != tc.want.tags {
			t.Errorf("%s (sdk %v): blocks %d/%d tools %d tags %v; want %+v", tc.query, tc.header != nil,
				len(got.Blocks), len(got.Memory.Blocks), len(got.Tools), got.Tags, tc.want)
		}
		if got.PendingApproval != nil {
			t.Errorf("%s: pending approval %+v", tc.query, got.PendingApproval)
		}
	}
	status, body := callWith(t, srv, "GET", path+"?include=agent.blocks&include=agent.everything", nil, sdk1)
	if status != 422 || !strings.Contains(string(body), `"loc":["query","include",1]`) || !strings.Contains(string(body), "'agent.tools'") {
		t.Fatalf("unknown include value = %d %s", status, body)
	}
	conform(t, body, "HTTPValidationError", false)

	// The list shapes its agents the same way, and still filters on the
	// relationships it leaves out.
	status, body = callWith(t, srv, "GET", "/v1/agents?tags=red", nil, sdk1)
	conform(t, body, "AgentState", true)
	list := decodeAs[[]shapedAgent](t, body)
	if status != 200 || len(list) != 1 || list[0].ID != a.ID || len(list[0].Tags) != 0 || len(list[0].Blocks) != 0 {
		t.Fatalf("list with the 1.x SDK = %d %s", status, body)
	}
	status, body = callWith(t, srv, "GET", "/v1/agents?tags=red&include=agent.blocks", nil, sdk1)
	conform(t, body, "AgentState", true)
	if list := decodeAs[[]shapedAgent](t, body); status != 200 || len(list) != 1 || len(list[0].Blocks) != 2 {
		t.Fatalf("list with include = %d %s", status, body)
	}
	fails(t, srv, "GET", "/v1/agents?include=blocks", nil, 422, "Input should be")
}

func TestAgentIncludePendingApproval(t *testing.T) {
	srv := server(t, callThenText("memory_insert", map[string]any{"label": "human", "new_str": "likes tea"}))
	a := createAgent(t, srv, "waiting")
	path := "/v1/agents/" + a.ID
	ok(t, srv, "PATCH", path+"/tools/approval/memory_insert?requires_approval=true", nil)
	body := ok(t, srv, "POST", path+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "remember tea"}}})
	resp := decodeAs[lettaResp](t, body)
	callID := resp.Messages[len(resp.Messages)-1].ToolCall.ToolCallID

	got := getShaped(t, srv, path+"?include=agent.pending_approval", sdk1)
	p := got.PendingApproval
	if p == nil || p.MessageType != "approval_request_message" || p.ToolCall.Name != "memory_insert" || p.ToolCall.ToolCallID != callID ||
		len(p.ToolCalls) != 1 || !strings.HasPrefix(p.ID, "message-") {
		t.Fatalf("pending approval = %+v", p)
	}
	var raw map[string]json.RawMessage
	_, b := callWith(t, srv, "GET", path+"?include=agent.pending_approval", nil, sdk1)
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	conform(t, raw["pending_approval"], "ApprovalRequestMessage", false)
	if got := getShaped(t, srv, path, sdk1); got.PendingApproval != nil {
		t.Fatalf("without include: %+v", got.PendingApproval)
	}
	status, body := callWith(t, srv, "GET", "/v1/agents?include=agent.pending_approval", nil, sdk1)
	if list := decodeAs[[]shapedAgent](t, body); status != 200 || len(list) != 1 || list[0].PendingApproval == nil {
		t.Fatalf("list = %d %s", status, body)
	}

	// Once answered, nothing is pending.
	ok(t, srv, "POST", path+"/messages", map[string]any{"messages": []map[string]any{{"type": "approval",
		"approvals": []map[string]any{{"type": "approval", "tool_call_id": callID, "approve": true}}}}})
	if got := getShaped(t, srv, path+"?include=agent.pending_approval", sdk1); got.PendingApproval != nil {
		t.Fatalf("after the answer: %+v", got.PendingApproval)
	}
}
