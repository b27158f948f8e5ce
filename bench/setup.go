package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelpie-ai/kelpie/agentfile"
)

// benchBlock is the memory block every bench agent has; the --tools turns
// rewrite it.
const benchBlock = "bench"

// createBody is the agents' CreateAgentRequest.
func createBody(cfg *Config, name string) map[string]any {
	return map[string]any{
		"name":  name,
		"model": cfg.Model,
		"memory_blocks": []map[string]any{
			{"label": benchBlock, "value": "turn 0", "limit": 2000},
		},
	}
}

// parallel runs fn(i) for i in [0, n) on up to workers goroutines (each
// labelled as a client), and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Add(1)
		pprof.Do(ctx, pprof.Labels(labelSide, sideClient), func(ctx context.Context) {
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n || ctx.Err() != nil {
						return
					}
					if err := fn(ctx, i); err != nil {
						once.Do(func() { first = err; cancel() })
						return
					}
				}
			}()
		})
	}
	wg.Wait()
	return first
}

// setupAgents creates the agents (with History messages each, by
// importing an agent file) and returns their IDs.
func setupAgents(ctx context.Context, cfg *Config, t *target) ([]string, error) {
	progress := newProgress(cfg.Progress, "setup", cfg.Agents)
	defer progress.stop()
	ids := make([]string, cfg.Agents)
	var file []byte
	if cfg.History > 0 {
		var err error
		if file, err = historyFile(ctx, cfg, t); err != nil {
			return nil, err
		}
	}
	err := parallel(ctx, cfg.Agents, cfg.Clients, func(ctx context.Context, i int) error {
		var err error
		if file != nil {
			ids[i], err = importAgent(ctx, t, file, fmt.Sprintf("bench-%d", i))
		} else {
			ids[i], err = createAgent(ctx, cfg, t, fmt.Sprintf("bench-%d", i))
		}
		progress.add(1)
		return err
	})
	if err != nil {
		if t.cleanupAgents {
			deleteAgents(context.WithoutCancel(ctx), cfg, t, ids)
		}
		return nil, err
	}
	return ids, nil
}

// createAgent creates one agent and returns its ID.
func createAgent(ctx context.Context, cfg *Config, t *target, name string) (string, error) {
	b, _ := json.Marshal(createBody(cfg, name))
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	status, body, err := t.do(ctx, t.client, http.MethodPost, t.kelpie+"/v1/agents", "application/json", bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("create agent: %w", err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("create agent: POST /v1/agents answered %d: %.300s", status, body)
	}
	var ag struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &ag); err != nil || ag.ID == "" {
		return "", fmt.Errorf("create agent: no agent ID in %.200s", body)
	}
	return ag.ID, nil
}

// historyFile creates a template agent, exports it, deletes it, and
// returns its agent file with History user and assistant messages
// appended (all in the context window).
func historyFile(ctx context.Context, cfg *Config, t *target) ([]byte, error) {
	id, err := createAgent(ctx, cfg, t, "bench-template")
	if err != nil {
		return nil, err
	}
	defer deleteAgent(context.WithoutCancel(ctx), t, id)
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	status, body, err := t.do(ctx, t.client, http.MethodGet, t.kelpie+"/v1/agents/"+url.PathEscape(id)+"/export", "", nil)
	if err != nil {
		return nil, fmt.Errorf("export the template agent: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("export the template agent: answered %d: %.300s", status, body)
	}
	f, err := agentfile.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("export the template agent: %w", err)
	}
	if len(f.Agents) != 1 {
		return nil, fmt.Errorf("export the template agent: %d agents in the file", len(f.Agents))
	}
	a := &f.Agents[0]
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range cfg.History {
		role, text := "user", fmt.Sprintf("old message %d from the user", i)
		if i%2 == 1 {
			role, text = "assistant", fmt.Sprintf("old reply %d from the agent", i)
		}
		m := agentfile.Message{ID: fmt.Sprintf("message-00000000-0000-4000-8000-%012d", i), Role: role,
			Content: agentfile.Content{agentfile.TextPart(text)}, CreatedAt: agentfile.FormatTime(created.Add(time.Duration(i) * time.Second))}
		a.Messages = append(a.Messages, m)
		a.InContextMessageIDs = append(a.InContextMessageIDs, m.ID)
	}
	return agentfile.Marshal(f)
}

// importAgent imports the agent file under name and returns the new
// agent's ID.
func importAgent(ctx context.Context, t *target, file []byte, name string) (string, error) {
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	if err := mw.WriteField("name", name); err != nil {
		return "", err
	}
	fw, err := mw.CreateFormFile("file", "bench.af")
	if err != nil {
		return "", err
	}
	fw.Write(file)
	mw.Close()
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	status, body, err := t.do(ctx, t.client, http.MethodPost, t.kelpie+"/v1/agents/import", mw.FormDataContentType(), &form)
	if err != nil {
		return "", fmt.Errorf("import agent: %w", err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("import agent: POST /v1/agents/import answered %d: %.300s", status, body)
	}
	var res struct {
		AgentIDs []string `json:"agent_ids"`
	}
	if err := json.Unmarshal(body, &res); err != nil || len(res.AgentIDs) != 1 {
		return "", fmt.Errorf("import agent: want one agent ID in %.200s", body)
	}
	return res.AgentIDs[0], nil
}

// deleteAgents deletes the agents, best effort.
func deleteAgents(ctx context.Context, cfg *Config, t *target, ids []string) {
	parallel(ctx, len(ids), cfg.Clients, func(ctx context.Context, i int) error {
		if ids[i] != "" {
			deleteAgent(ctx, t, ids[i])
		}
		return nil
	})
}

// deleteAgent deletes one agent, best effort.
func deleteAgent(ctx context.Context, t *target, id string) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	t.do(ctx, t.client, http.MethodDelete, t.kelpie+"/v1/agents/"+url.PathEscape(id), "", nil)
}

// warmUp sends every agent one unmeasured message (activating it,
// compacting a preloaded history that overflows its window, opening the
// clients' connections) and the fake model one request per client.
func warmUp(ctx context.Context, cfg *Config, t *target, ids []string) error {
	progress := newProgress(cfg.Progress, "warm-up", len(ids))
	defer progress.stop()
	load := &kelpieLoad{cfg: cfg, t: t, agents: ids}
	err := parallel(ctx, len(ids), cfg.Clients, func(ctx context.Context, i int) error {
		defer progress.add(1)
		for {
			r := load.send(ctx, i, -1-i)
			switch {
			case r.kind == "":
				return nil
			case r.busy:
				continue
			default:
				return fmt.Errorf("warm-up message to agent %s: %s: %s", ids[i], r.kind, r.detail)
			}
		}
	})
	if err != nil || t.fakeLLM == "" {
		return err
	}
	floor := &floorLoad{cfg: cfg, t: t}
	return parallel(ctx, cfg.Clients, cfg.Clients, func(ctx context.Context, i int) error {
		if r := floor.send(ctx, i, -1-i); r.kind != "" {
			return fmt.Errorf("warm-up request to the fake model: %s: %s", r.kind, r.detail)
		}
		return nil
	})
}
