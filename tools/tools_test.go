package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
	"github.com/kelpie-ai/kelpie/tools"
)

var ctx = context.Background()

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const weather = `import requests

def _helper(x):
    return x

def get_weather(city: str, days: int = 1, units: Literal["c", "f"] = "c",
                tags: Optional[List[str]] = None, agent_state: "AgentState" = None) -> str:  # a comment (with parens
    """Get the weather forecast.

    Uses a made-up service.

    Args:
        city (str): The city to look up,
            for example Oslo.
        days: How many days.
        units: Celsius or Fahrenheit.

    Returns:
        str: The forecast.
    """
    return "sunny"
`

func TestParsePython(t *testing.T) {
	s, err := tools.ParsePython(weather)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"description":"Get the weather forecast.\n\nUses a made-up service.","name":"get_weather","parameters":{"properties":{` +
		`"city":{"description":"The city to look up, for example Oslo.","type":"string"},` +
		`"days":{"description":"How many days.","type":"integer"},` +
		`"tags":{"items":{"type":"string"},"type":"array"},` +
		`"units":{"description":"Celsius or Fahrenheit.","enum":["c","f"],"type":"string"}},` +
		`"required":["city"],"type":"object"}}`
	if got := jsonOf(t, s); got != want {
		t.Fatalf("schema\n got %s\nwant %s", got, want)
	}
	for src, want := range map[string]string{
		"async def f(self, a: float | None, *args, b: dict[str, int] = {}, **kw):\n    '''One line.'''\n": `{"description":"One line.","name":"f","parameters":{"properties":{"a":{"type":"number"},"b":{"type":"object"}},"required":["a"],"type":"object"}}`,
		"def g() -> Dict[str, int]:\n    return {}\n":                                                     `{"description":"","name":"g","parameters":{"properties":{},"required":[],"type":"object"}}`,
		"def h(x: Union[int, str], y: tuple[bool, ...]):\n  r\"\"\"Raw.\"\"\"\n":                          `{"description":"Raw.","name":"h","parameters":{"properties":{"x":{"anyOf":[{"type":"integer"},{"type":"string"}]},"y":{"items":{"type":"boolean"},"type":"array"}},"required":["x","y"],"type":"object"}}`,
	} {
		s, err := tools.ParsePython(src)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got := jsonOf(t, s); got != want {
			t.Errorf("%q:\n got %s\nwant %s", src, got, want)
		}
	}
	for src, want := range map[string]string{
		"x = 1\n":                        "no top-level function",
		"def f(a):\n  pass\n":            `"a" of f has no type annotation`,
		"def f(a: MyModel):\n  pass\n":   `unsupported type annotation "MyModel"`,
		"def f(a: int)\n  pass\n":        "no ':' ends its signature",
		"def f(a: int, b: str = 'x'\n":   "unbalanced",
		"class C:\n    def m(self): ...": "no top-level function",
	} {
		if _, err := tools.ParsePython(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", src, err, want)
		}
	}
}

func registry() (*tools.Registry, storage.Store) {
	r := rt.NewSystem()
	store := memory.New()
	return tools.NewRegistry(r, store, r.Rand("ids")), store
}

func ptr[T any](v T) *T { return &v }

func TestSpecValidation(t *testing.T) {
	reg, _ := registry()
	src := "def echo(text: str) -> str:\n    \"\"\"Echo text.\"\"\"\n    return text\n"
	schema := map[string]any{"name": "echo", "parameters": map[string]any{"type": "object", "properties": map[string]any{}}}
	for _, c := range []struct {
		spec tools.Spec
		want string
	}{
		{tools.Spec{SourceCode: strings.Repeat("#", tools.SourceCodeBytesMax+1) + "\n" + src}, "over the limit"},
		{tools.Spec{SourceCode: "def f(a): pass"}, "could not derive json_schema"},
		{tools.Spec{SourceCode: "function f() {}", SourceType: "typescript"}, "json_schema is required"},
		{tools.Spec{SourceCode: src, Name: "other"}, `differs from json_schema name "echo"`},
		{tools.Spec{SourceCode: "", JSONSchema: map[string]any{"name": "9lives"}}, "tool name"},
		{tools.Spec{SourceCode: "", JSONSchema: map[string]any{"name": strings.Repeat("a", 65)}}, "tool name"},
		{tools.Spec{SourceCode: "", JSONSchema: map[string]any{"parameters": map[string]any{}}}, "has no name"},
		{tools.Spec{SourceCode: "", JSONSchema: map[string]any{"name": "x", "parameters": "nope"}}, "must be a JSON object"},
		{tools.Spec{SourceCode: src, ReturnCharLimit: ptr(0)}, "return_char_limit 0"},
		{tools.Spec{SourceCode: src, ReturnCharLimit: ptr(tools.ReturnCharLimitMax + 1)}, "return_char_limit"},
		{tools.Spec{SourceCode: src, SourceType: "Py thon"}, "source_type"},
		{tools.Spec{SourceCode: src, Tags: []string{""}}, "empty tag"},
		{tools.Spec{SourceCode: "def memory_insert(a: str): pass"}, "built-in"},
	} {
		_, err := reg.Create(ctx, c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.spec.Name+c.spec.SourceType, err, c.want)
		}
	}
	// A json_schema without parameters gets an empty object schema; the
	// name may come from the source.
	got, err := reg.Create(ctx, tools.Spec{SourceCode: src, JSONSchema: map[string]any{"description": "d"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "echo" || got.Description != "d" || got.JSONSchema["parameters"] == nil || got.ReturnCharLimit != tools.DefaultReturnCharLimit || got.SourceType != "python" {
		t.Fatalf("created %+v", got)
	}
	if _, err := reg.Create(ctx, tools.Spec{SourceCode: "", JSONSchema: schema}); !errors.Is(err, agent.ErrAlreadyExists) {
		t.Fatalf("duplicate name: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	reg, store := registry()
	mk := func(name string) *tools.Tool {
		t.Helper()
		tl, err := reg.Create(ctx, tools.Spec{SourceCode: "def " + name + "(q: str):\n    \"\"\"Look " + name + " up.\"\"\"\n"})
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	a, b, c := mk("alpha"), mk("beta"), mk("gamma")
	if !strings.HasPrefix(a.ID, "tool-") || a.ToolType != tools.TypeCustom || a.Description != "Look alpha up." {
		t.Fatalf("created %+v", a)
	}
	nb := len(agent.BuiltinTools())
	ids := func(ts []tools.Tool) string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return strings.Join(out, ",")
	}
	list := func(q tools.Query) string {
		t.Helper()
		ts, err := reg.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return ids(ts)
	}
	if got := list(tools.Query{Descending: true, Limit: 3}); got != "gamma,beta,alpha" {
		t.Fatalf("newest first = %s", got)
	}
	if got := list(tools.Query{Limit: 1}); got != agent.BuiltinTools()[0] {
		t.Fatalf("oldest = %s (built-ins come first)", got)
	}
	if got := list(tools.Query{After: a.ID}); got != "beta,gamma" {
		t.Fatalf("after alpha = %s", got)
	}
	if got := list(tools.Query{Before: c.ID, Limit: 1}); got != "beta" {
		t.Fatalf("before gamma = %s", got)
	}
	if got := list(tools.Query{Descending: true, After: c.ID, Before: a.ID}); got != "beta" {
		t.Fatalf("between = %s", got)
	}
	if got := list(tools.Query{Search: "ET", ExcludeLetta: true}); got != "beta" {
		t.Fatalf("search = %s", got)
	}
	if got := list(tools.Query{Names: []string{"alpha", "memory_insert"}}); got != "memory_insert,alpha" {
		t.Fatalf("names = %s", got)
	}
	if _, err := reg.List(ctx, tools.Query{After: "tool-00000000-0000-4000-8000-000000000000"}); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("unknown cursor: %v", err)
	}
	if n, err := reg.Count(ctx, tools.Query{}); err != nil || n != nb+3 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if n, _ := reg.Count(ctx, tools.Query{OnlyLetta: true}); n != nb {
		t.Fatalf("letta count = %d", n)
	}

	// Rename through a new source: the name index follows.
	up, err := reg.Update(ctx, b.ID, tools.Patch{SourceCode: ptr("def delta(n: int):\n    \"\"\"Delta.\"\"\"\n"), Tags: &[]string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "delta" || up.ID != b.ID || up.Description != "Delta." || !up.CreatedAt.Equal(b.CreatedAt) || up.Tags[0] != "x" {
		t.Fatalf("updated %+v", up)
	}
	if _, err := reg.GetByName(ctx, "beta"); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("old name still indexed: %v", err)
	}
	if got, err := reg.GetByName(ctx, "delta"); err != nil || got.ID != b.ID {
		t.Fatalf("new name: %+v %v", got, err)
	}
	if _, err := reg.Update(ctx, b.ID, tools.Patch{JSONSchema: map[string]any{"name": "alpha"}}); !errors.Is(err, agent.ErrAlreadyExists) {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	// Description updates keep the schema in step.
	up, err = reg.Update(ctx, b.ID, tools.Patch{Description: ptr("New words.")})
	if err != nil || up.JSONSchema["description"] != "New words." {
		t.Fatalf("description update: %+v %v", up, err)
	}

	// Upsert replaces by name, keeping the ID.
	u, created, err := reg.Upsert(ctx, tools.Spec{SourceCode: "def alpha(q: str, n: int):\n    \"\"\"Alpha v2.\"\"\"\n"})
	if err != nil || created || u.ID != a.ID || u.Description != "Alpha v2." {
		t.Fatalf("upsert existing: %+v created=%v %v", u, created, err)
	}
	u, created, err = reg.Upsert(ctx, tools.Spec{SourceCode: "def omega(q: str):\n    pass\n"})
	if err != nil || !created {
		t.Fatalf("upsert new: %+v created=%v %v", u, created, err)
	}
	if _, _, err := reg.Upsert(ctx, tools.Spec{SourceCode: "def send_message(message: str):\n    pass\n"}); !errors.Is(err, tools.ErrReadOnly) {
		t.Fatalf("upsert onto a built-in: %v", err)
	}

	// Built-ins are read-only.
	bid := tools.BuiltinID(agent.ToolMemoryInsert)
	if got, err := reg.Get(ctx, bid); err != nil || got.Name != agent.ToolMemoryInsert || !got.Builtin() {
		t.Fatalf("get built-in: %+v %v", got, err)
	}
	if _, err := reg.Update(ctx, bid, tools.Patch{Description: ptr("x")}); !errors.Is(err, tools.ErrReadOnly) {
		t.Fatalf("update built-in: %v", err)
	}
	if err := reg.Delete(ctx, bid); !errors.Is(err, tools.ErrReadOnly) {
		t.Fatalf("delete built-in: %v", err)
	}

	// Delete removes the tool and its index entries; the name is free again.
	if err := reg.Delete(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(ctx, c.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := reg.Delete(ctx, c.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if n, _ := reg.Count(ctx, tools.Query{ExcludeLetta: true}); n != 3 {
		t.Fatalf("custom count after delete = %d", n)
	}
	mk("gamma")

	// The bound on the number of tools: pretend the registry is full.
	tx, _ := store.Begin(ctx)
	var full [8]byte
	full[6], full[7] = byte(tools.ToolsMax>>8), byte(tools.ToolsMax&0xff)
	tx.Set(tools.CountKey(), full[:])
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, tools.Spec{SourceCode: "def more(q: str): pass"}); !errors.Is(err, agent.ErrInvalid) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("create over the bound: %v", err)
	}
}

func TestBuiltinIDsStable(t *testing.T) {
	// The IDs of built-in tools are part of the API: clients store them.
	if got := tools.BuiltinID("send_message"); got != "tool-5a9c7937-d248-4129-b1ca-17fc0a18e76d" {
		t.Fatalf("BuiltinID = %q", got)
	}
	for _, n := range agent.BuiltinTools() {
		if got, ok := tools.BuiltinName(tools.BuiltinID(n)); !ok || got != n {
			t.Fatalf("BuiltinName(BuiltinID(%s)) = %q %v", n, got, ok)
		}
	}
}
