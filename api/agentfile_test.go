package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/agentfile"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// The published agent files (agentfile/testdata/README.md).
const (
	memgptAF   = "../agentfile/testdata/memgpt_agent_with_convo.af"
	outreachAF = "../agentfile/testdata/outreach_workflow_agent.af"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upload posts a multipart form with the file (if not nil) and fields to
// POST /v1/agents/import.
func upload(t *testing.T, srv *httptest.Server, file []byte, fields map[string]string) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	}) {
		if err := mw.WriteField(k, fields[k]); err != nil {
			t.Fatal(err)
		}
	}
	if file != nil {
		fw, err := mw.CreateFormFile("file", "agent.af")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(file)
	}
	mw.Close()
	resp, err := srv.Client().Post(srv.URL+"/v1/agents/import", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

type importedJSON struct {
	AgentIDs []string `json:"agent_ids"`
	Notes    []string `json:"notes"`
}

func importOK(t *testing.T, srv *httptest.Server, file []byte, fields map[string]string) importedJSON {
	t.Helper()
	status, body := upload(t, srv, file, fields)
	if status != http.StatusOK {
		t.Fatalf("import = %d %s", status, body)
	}
	conform(t, body, "ImportedAgentsResponse", false)
	res := decodeAs[importedJSON](t, body)
	if len(res.AgentIDs) != 1 || !validAgentID(res.AgentIDs[0]) {
		t.Fatalf("agent_ids %v", res.AgentIDs)
	}
	return res
}

func validAgentID(id string) bool {
	return strings.HasPrefix(id, "agent-") && len(id) == len("agent-")+36
}

// inner returns the document of a file encoded twice.
func inner(t *testing.T, b []byte) []byte {
	t.Helper()
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// TestPublishedFilesConform: the published files are agent files by
// Letta's own schema, so what the tests below import is the real thing.
func TestPublishedFilesConform(t *testing.T) {
	conform(t, readFile(t, memgptAF), "AgentFileSchema", false)
	conform(t, inner(t, readFile(t, outreachAF)), "AgentFileSchema", false)
}

func TestImportExportAgentFile(t *testing.T) {
	srv := server(t, llmtest.Echo())
	for _, c := range []struct {
		file, name string
	}{{memgptAF, "memgpt_agent"}, {outreachAF, "outreach_workflow_agent"}} {
		raw := readFile(t, c.file)
		// Letta's default appends _copy; name overrides.
		res := importOK(t, srv, raw, nil)
		if len(res.Notes) == 0 {
			t.Fatalf("%s: no notes", c.file)
		}
		got := ok(t, srv, "GET", "/v1/agents/"+res.AgentIDs[0], nil)
		conform(t, got, "AgentState", false)
		if a := decodeAs[agentJSON](t, got); a.Name != c.name+"_copy" {
			t.Fatalf("name %q", a.Name)
		}
		res = importOK(t, srv, raw, map[string]string{"append_copy_suffix": "false", "override_existing_tools": "true", "strip_messages": "false"})
		got = ok(t, srv, "GET", "/v1/agents/"+res.AgentIDs[0], nil)
		if a := decodeAs[agentJSON](t, got); a.Name != c.name {
			t.Fatalf("name %q", a.Name)
		}
		res = importOK(t, srv, raw, map[string]string{"name": "named", "override_name": "ignored", "project_id": "p", "secrets": `{"K": "v"}`})
		got = ok(t, srv, "GET", "/v1/agents/"+res.AgentIDs[0], nil)
		if a := decodeAs[agentJSON](t, got); a.Name != "named" {
			t.Fatalf("name %q", a.Name)
		}

		// The export is an agent file, by Letta's schema and by Parse.
		resp, err := srv.Client().Get(srv.URL + "/v1/agents/" + res.AgentIDs[0] + "/export")
		if err != nil {
			t.Fatal(err)
		}
		exported, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !bytes.HasPrefix(exported, []byte("{\n  \"agents\": [")) {
			t.Fatalf("export = %d %s %.80s", resp.StatusCode, resp.Header.Get("Content-Type"), exported)
		}
		conform(t, exported, "AgentFileSchema", false)
		f, err := agentfile.Parse(exported)
		if err != nil {
			t.Fatal(err)
		}
		if f.Agents[0].Name != "named" {
			t.Fatalf("exported name %q", f.Agents[0].Name)
		}
		// And imports again.
		importOK(t, srv, exported, map[string]string{"append_copy_suffix": "false"})

		// POST export carries skills.
		body := ok(t, srv, "POST", "/v1/agents/"+res.AgentIDs[0]+"/export", map[string]any{
			"skills": []map[string]any{{"name": "greet", "files": map[string]string{"SKILL.md": "# greet"}}}, "scrub_messages": true})
		conform(t, body, "AgentFileSchema", false)
		g, err := agentfile.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Skills) != 1 || g.Skills[0].Files["SKILL.md"] != "# greet" || len(g.Agents[0].Messages) != 0 {
			t.Fatalf("skills %+v, %d messages", g.Skills, len(g.Agents[0].Messages))
		}
	}
}

// TestExportConversation: an agent with a history exports it, and the
// export conforms.
func TestExportConversation(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "talker")
	ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hello"}}})
	body := ok(t, srv, "GET", "/v1/agents/"+a.ID+"/export?conversation_id=default", nil)
	conform(t, body, "AgentFileSchema", false)
	f, err := agentfile.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.Agents[0].Messages
	if len(msgs) < 3 || msgs[1].Content.Text() != "hello" {
		t.Fatalf("messages %+v", msgs)
	}
	scrubbed, err := agentfile.Parse(ok(t, srv, "GET", "/v1/agents/"+a.ID+"/export?scrub_messages=true", nil))
	if err != nil || len(scrubbed.Agents[0].Messages) != 0 {
		t.Fatalf("scrubbed: %v", err)
	}
	res := importOK(t, srv, body, nil)
	got := decodeAs[[]map[string]any](t, ok(t, srv, "GET", "/v1/agents/"+res.AgentIDs[0]+"/messages?order=asc", nil))
	if len(got) == 0 || got[0]["content"] != "hello" {
		t.Fatalf("imported messages %v", got)
	}
}

func TestAgentFileErrors(t *testing.T) {
	srv := server(t, llmtest.Echo())
	failsUpload := func(file []byte, fields map[string]string, status int, want string) {
		t.Helper()
		got, body := upload(t, srv, file, fields)
		detail, err := errorDetail(body)
		if got != status || err != nil || !strings.Contains(detail, want) {
			t.Fatalf("import = %d %s; want %d with %q", got, body, status, want)
		}
		if status == http.StatusUnprocessableEntity {
			conform(t, body, "HTTPValidationError", false)
		}
	}
	failsUpload([]byte("{not json"), nil, http.StatusBadRequest, "Corrupted agent file format: agentfile: not JSON: line 1, column 2")
	failsUpload([]byte(`{"name": "legacy", "memory": {}}`), nil, http.StatusBadRequest, "legacy single-agent format")
	failsUpload([]byte(`{"agents": [{"id": "agent-0", "tool_ids": ["tool-7"]}]}`), nil, http.StatusUnprocessableEntity, `agents[0].tool_ids: "tool-7" names no entity`)
	failsUpload(make([]byte, agentfile.FileBytesMax+1), nil, http.StatusRequestEntityTooLarge, "exceeds")
	failsUpload(nil, map[string]string{"name": "x"}, http.StatusUnprocessableEntity, `no "file"`)
	failsUpload(readFile(t, memgptAF), map[string]string{"strip_messages": "maybe"}, http.StatusUnprocessableEntity, "strip_messages must be true or false")
	failsUpload(readFile(t, memgptAF), map[string]string{"secrets": "[1]"}, http.StatusBadRequest, "secrets must be a valid JSON string")
	failsUpload(readFile(t, memgptAF), map[string]string{"name": strings.Repeat("n", 65<<10)}, http.StatusUnprocessableEntity, `form field "name" exceeds`)
	fails(t, srv, "POST", "/v1/agents/import", map[string]any{"file": "x"}, http.StatusUnprocessableEntity, "multipart/form-data")

	a := createAgent(t, srv, "a")
	fails(t, srv, "GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/export", nil, http.StatusNotFound, "not found")
	fails(t, srv, "GET", "/v1/agents/nope/export", nil, http.StatusUnprocessableEntity, "not a valid agent ID")
	fails(t, srv, "GET", "/v1/agents/"+a.ID+"/export?use_legacy_format=true", nil, http.StatusBadRequest, "Legacy format is not supported")
	fails(t, srv, "GET", "/v1/agents/"+a.ID+"/export?conversation_id=conv-1", nil, http.StatusNotFound, `conversation "conv-1" not found`)
	fails(t, srv, "GET", "/v1/agents/"+a.ID+"/export?scrub_messages=perhaps", nil, http.StatusUnprocessableEntity, "scrub_messages must be a boolean")
	fails(t, srv, "POST", "/v1/agents/"+a.ID+"/export", map[string]any{"skills": []map[string]any{{"files": map[string]string{}}}}, http.StatusUnprocessableEntity, "needs a name")
}
