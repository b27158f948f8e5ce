package service_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"strings"
	"sync"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
)

// Two conversations of one agent append to the agent's (private) block at
// the same time: every edit survives, and each conversation's log holds
// only its own turns. A conversation that isolates the block edits its
// own copy, never the agent's.
func TestConversationsConcurrentEditsNoLostUpdate(t *testing.T) {
	const rounds = 12
	m := &appender{label: "human"}
	e := newEnv(t, nil, m.script())
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "multi", Tools: []string{agent.ToolCoreMemoryAppend},
		Blocks: []agent.BlockCreate{{Label: "human", Value: "start", Limit: agent.BlockLimitCharsMax}}})
	if err != nil {
		t.Fatal(err)
	}
	var convs []*agent.Conversation
	for _, labels := range [][]string{nil, nil, {"human"}} {
		c, err := e.svc.CreateConversation(ctx, ag.ID, agent.CreateConversationRequest{IsolatedBlockLabels: labels})
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*rounds)
	for ci, c := range convs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{ConversationID: c.ID,
					Messages: []agent.InputMessage{{Role: "user", Content: fmt.Sprintf("c%d-%d", ci, i)}}})
				if err == nil && resp.Messages[2].ToolStatus != agent.ToolSuccess {
					err = fmt.Errorf("append: %+v", resp.Messages[2])
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	blocks, err := e.svc.GetAgent(ctx, ag.ID)
	if err != nil {
		t.Fatal(err)
	}
	value := "\n" + blocks.Block("human").Value + "\n"
	if n := strings.Count(value, "\n") - 1; n != 1+2*rounds {
		t.Fatalf("the agent's block holds %d lines, want %d:%s", n, 1+2*rounds, value)
	}
	for ci := range 2 {
		for i := range rounds {
			if !strings.Contains(value, fmt.Sprintf("\nc%d-%d\n", ci, i)) {
				t.Fatalf("edit c%d-%d was lost:%s", ci, i, value)
			}
		}
	}
	if strings.Contains(value, "c2-") {
		t.Fatalf("the isolating conversation edited the agent's block:%s", value)
	}
	own, err := e.svc.GetConversation(ctx, convs[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	if v := own.IsolatedBlocks[0].Value; strings.Count(v, "\nc2-") != rounds {
		t.Fatalf("the isolated copy holds %q", v)
	}
	for ci, c := range convs {
		msgs, err := e.svc.ListMessages(ctx, ag.ID, agent.ListMessagesRequest{ConversationID: c.ID, Limit: agent.MessagesPageMax})
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			if msg.ConversationID != c.ID || (msg.Role == "user" && !strings.HasPrefix(msg.Content, fmt.Sprintf("c%d-", ci))) {
				t.Fatalf("conversation %d logs %+v", ci, msg)
			}
		}
		if len(msgs) != 4*rounds {
			t.Fatalf("conversation %d logs %d messages, want %d", ci, len(msgs), 4*rounds)
		}
	}
}

// A run's client skills (letta-code sends its own) are listed in the
// system prompt of its steps, and only of its steps.
func TestClientSkillsInPrompt(t *testing.T) {
	var prompts []string
	model := &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		prompts = append(prompts, req.Messages[0].Content)
		return llmtest.Text("ok"), nil
	}}
	e := newEnv(t, nil, model)
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "skilled"})
	if err != nil {
		t.Fatal(err)
	}
	skills := []agent.ClientSkill{{Name: "deploy", Description: "Ship the service.", Location: ".skills/deploy/SKILL.md"}}
	if _, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{ClientSkills: skills, Messages: []agent.InputMessage{{Role: "user", Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "again"}}}); err != nil {
		t.Fatal(err)
	}
	if len(prompts) != 2 || !strings.Contains(prompts[0], "<available_skills>") || !strings.Contains(prompts[0], "- deploy (.skills/deploy/SKILL.md): Ship the service.") ||
		strings.Contains(prompts[1], "available_skills") {
		t.Fatalf("prompts: %q", prompts)
	}
	if _, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{ClientSkills: []agent.ClientSkill{{}}, Messages: []agent.InputMessage{{Role: "user", Content: "x"}}}); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("a skill without a name: %v", err)
	}
}
