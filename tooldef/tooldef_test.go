package tooldef_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/tooldef"
)

// TestLayering: tool definitions sit below the agent, and the tools
// registry reads them there, so neither the registry nor the
// definitions import the agent loop.
func TestLayering(t *testing.T) {
	for _, pkg := range []string{"../tooldef", "../tools", "../toolexec", "../errkind"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 2 {
			t.Fatalf("go list -deps %s gave %v", pkg, deps)
		}
		for _, forbidden := range []string{"github.com/kelpie-ai/kelpie/agent", "github.com/kelpie-ai/kelpie/service"} {
			if slices.Contains(deps, forbidden) {
				t.Errorf("%s depends on %s", pkg, forbidden)
			}
		}
	}
}

// TestCatalog: every built-in tool has a definition the model can use.
func TestCatalog(t *testing.T) {
	names := tooldef.Names()
	if len(names) < 15 || !slices.IsSorted(names) {
		t.Fatalf("built-in tools: %v", names)
	}
	for _, s := range tooldef.Schemas(names) {
		if s.Name == "" || s.Description == "" || len(s.Parameters) == 0 {
			t.Errorf("tool %q has an incomplete definition", s.Name)
		}
	}
	if b, _ := tooldef.Lookup(tooldef.SendMessage); !b.Terminal || b.External != "" {
		t.Errorf("send_message: %+v", b)
	}
	if !tooldef.IsExternal(tooldef.RunCode) || !tooldef.IsExternal(tooldef.WebSearch) || tooldef.IsExternal(tooldef.MemoryInsert) {
		t.Error("IsExternal misclassifies")
	}
}
