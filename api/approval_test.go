package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// callThenText calls tool with args on a user message and answers a tool
// result with text.
func callThenText(tool string, args map[string]any) *llmtest.Script {
	return &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		if req.Messages[len(req.Messages)-1].Role == llm.RoleTool {
			return llmtest.Text("thanks"), nil
		}
		return llmtest.Call(tool, args), nil
	}}
}

type lettaResp struct {
	Messages []struct {
		MessageType string `json:"message_type"`
		ToolCall    struct {
			ToolCallID string `json:"tool_call_id"`
		} `json:"tool_call"`
		ToolReturn string `json:"tool_return"`
		Status     string `json:"status"`
	} `json:"messages"`
	StopReason struct {
		StopReason string `json:"stop_reason"`
	} `json:"stop_reason"`
}

func TestToolApproval(t *testing.T) {
	for _, approve := range []bool{true, false} {
		srv := server(t, callThenText("memory_insert", map[string]any{"label": "human", "new_str": "likes tea"}))
		a := createAgent(t, srv, "approver")
		path := "/v1/agents/" + a.ID
		conform(t, ok(t, srv, "PATCH", path+"/tools/approval/memory_insert?requires_approval=true", nil), "AgentState", false)
		body := ok(t, srv, "POST", path+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "remember I like tea"}}})
		conform(t, body, "LettaResponse", false)
		resp := decodeAs[lettaResp](t, body)
		last := resp.Messages[len(resp.Messages)-1]
		if resp.StopReason.StopReason != "requires_approval" || last.MessageType != "approval_request_message" {
			t.Fatalf("turn = %s", body)
		}
		// Nothing else goes in until the call is answered.
		fails(t, srv, "POST", path+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hello?"}}}, 409, "approval")
		body = ok(t, srv, "POST", path+"/messages", map[string]any{"messages": []map[string]any{{"type": "approval",
			"approvals": []map[string]any{{"type": "approval", "tool_call_id": last.ToolCall.ToolCallID, "approve": approve, "reason": "not now"}}}}})
		conform(t, body, "LettaResponse", false)
		resp = decodeAs[lettaResp](t, body)
		if resp.StopReason.StopReason != "end_turn" || resp.Messages[0].MessageType != "tool_return_message" {
			t.Fatalf("after the answer: %s", body)
		}
		block := decodeAs[struct{ Value string }](t, ok(t, srv, "GET", path+"/core-memory/blocks/human", nil))
		if approve != strings.Contains(block.Value, "likes tea") {
			t.Fatalf("approve=%v: block %q", approve, block.Value)
		}
		if !approve && (resp.Messages[0].Status != "error" || !strings.Contains(resp.Messages[0].ToolReturn, "not now")) {
			t.Fatalf("denial logged as %+v", resp.Messages[0])
		}
	}
}

func TestClientTool(t *testing.T) {
	srv := server(t, callThenText("get_weather", map[string]any{"city": "Oslo"}))
	a := createAgent(t, srv, "client-tools")
	path := "/v1/agents/" + a.ID + "/messages"
	tool := map[string]any{"name": "get_weather", "description": "weather", "parameters": map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}}
	body := ok(t, srv, "POST", path, map[string]any{"client_tools": []any{tool}, "messages": []map[string]any{{"role": "user", "content": "weather?"}}})
	resp := decodeAs[lettaResp](t, body)
	last := resp.Messages[len(resp.Messages)-1]
	if resp.StopReason.StopReason != "requires_approval" || last.MessageType != "approval_request_message" {
		t.Fatalf("turn = %s", body)
	}
	body = ok(t, srv, "POST", path, map[string]any{"messages": []map[string]any{{"type": "tool_return",
		"tool_returns": []map[string]any{{"tool_call_id": last.ToolCall.ToolCallID, "tool_return": "sunny, 21C", "status": "success"}}}}})
	conform(t, body, "LettaResponse", false)
	resp = decodeAs[lettaResp](t, body)
	if resp.Messages[0].ToolReturn != "sunny, 21C" || resp.StopReason.StopReason != "end_turn" {
		t.Fatalf("after the client's result: %s", body)
	}
	fails(t, srv, "POST", path, map[string]any{"messages": []map[string]any{{"type": "approval", "approvals": []map[string]any{{"type": "approval", "tool_call_id": "call-x", "approve": true}}}}}, 422, "no tool call is waiting")
}
