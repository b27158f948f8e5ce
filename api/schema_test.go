package api_test

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The contract: every response body is validated against the schema of
// the Letta OpenAPI document (testdata/letta-openapi.json, a copy of
// shared/reference/letta-openapi.json).

var (
	schemaOnce sync.Once
	compiler   *jsonschema.Compiler
	schemaErr  error
	schemas    = map[string]*jsonschema.Schema{}
	schemasMu  sync.Mutex
)

const openapiURL = "file:///letta-openapi.json"

func schema(t *testing.T, ref string) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		raw, err := os.ReadFile("testdata/letta-openapi.json")
		if err != nil {
			schemaErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			schemaErr = err
			return
		}
		compiler = jsonschema.NewCompiler()
		compiler.DefaultDraft(jsonschema.Draft2020)
		schemaErr = compiler.AddResource(openapiURL, doc)
	})
	if schemaErr != nil {
		t.Fatalf("loading the Letta OpenAPI document: %v", schemaErr)
	}
	schemasMu.Lock()
	defer schemasMu.Unlock()
	if s, ok := schemas[ref]; ok {
		return s
	}
	s, err := compiler.Compile(openapiURL + "#/components/schemas/" + ref)
	if err != nil {
		t.Fatalf("compiling schema %s: %v", ref, err)
	}
	schemas[ref] = s
	return s
}

// conform fails the test unless body is an instance of the named schema,
// or, with array set, an array of instances.
func conform(t *testing.T, body []byte, ref string, array bool) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, body)
	}
	s := schema(t, ref)
	items := []any{inst}
	if array {
		list, ok := inst.([]any)
		if !ok {
			t.Fatalf("response is not an array: %s", body)
		}
		items = list
	}
	for i, item := range items {
		if err := s.Validate(item); err != nil {
			t.Fatalf("item %d does not conform to %s: %v\n%s", i, ref, err, fmt.Sprint(item))
		}
	}
}

// TestSchemaCheckBites shows the contract check rejects wrong shapes, so
// passing it means something.
func TestSchemaCheckBites(t *testing.T) {
	for ref, bad := range map[string]string{
		"AgentState":        `{"id": "agent-1", "name": "x"}`,
		"LettaResponse":     `{"messages": [], "stop_reason": {"stop_reason": "bored"}, "usage": {}}`,
		"LettaMessageUnion": `{"id": "message-1", "date": "2026-01-01T00:00:00Z", "message_type": "user_message"}`,
		"BlockResponse":     `{"value": 3}`,
	} {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(bad)))
		if err != nil {
			t.Fatal(err)
		}
		if schema(t, ref).Validate(inst) == nil {
			t.Errorf("%s accepted %s", ref, bad)
		}
	}
}
