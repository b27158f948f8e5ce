package agent

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// TestOpsHandled: every operation declared in ops.go has a handler, and
// an unknown operation is refused as invalid.
func TestOpsHandled(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "ops.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		if ix, ok := lit.Type.(*ast.IndexListExpr); ok {
			if id, ok := ix.X.(*ast.Ident); ok && id.Name == "Op" && len(lit.Elts) == 1 {
				if s, ok := lit.Elts[0].(*ast.BasicLit); ok {
					name, _ := strconv.Unquote(s.Value)
					names = append(names, name)
				}
			}
		}
		return true
	})
	if len(names) < 30 {
		t.Fatalf("found %d operations in ops.go; the parse is broken", len(names))
	}
	for _, n := range names {
		if handlers[n] == nil {
			t.Errorf("operation %q has no handler", n)
		}
	}
	if len(handlers) != len(names) {
		t.Errorf("%d handlers for %d operations", len(handlers), len(names))
	}
	var a Actor
	if _, err := a.Invoke(context.Background(), nil, "no_such_op", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown operation: err = %v, want ErrInvalid", err)
	}
}

// TestBuiltinsRun: every built-in tool either runs outside the actor or
// has its behaviour here.
func TestBuiltinsRun(t *testing.T) {
	for name, b := range builtins {
		if (b.External == "") == (b.run == nil) {
			t.Errorf("built-in %s: external %q, run set %v", name, b.External, b.run != nil)
		}
	}
}
