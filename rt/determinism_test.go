package rt_test

// This file enforces the determinism rule (DESIGN.md, section 1.1): code
// the simulator drives reaches time, randomness and concurrency only
// through the seam. It parses the source of those packages and fails on
// the constructs that would escape the simulator's control.

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// modulePath is the module whose root the test looks for.
const modulePath = "github.com/kelpie-ai/kelpie"

// simDrivenDirs returns the directories, relative to the module root, of
// the module's packages the simulator links (`go list -deps ./sim`),
// except those in notSimDriven: a package the simulator starts to drive
// is checked without anyone having to list it. Only the .go files
// directly in each directory are checked.
func simDrivenDirs(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./sim")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./sim: %v", err)
	}
	var dirs []string
	for _, pkg := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(pkg, modulePath+"/")
		if !ok || notSimDriven[rel] != "" {
			continue
		}
		dirs = append(dirs, rel)
	}
	if len(dirs) < 5 {
		t.Fatalf("go list found only %v: the simulator links more than that", dirs)
	}
	return dirs
}

// notSimDriven are packages the simulator links but does not drive, with
// the reason.
var notSimDriven = map[string]string{
	"sim": "the simulator itself: its scheduler binds the seam (goroutines under a baton, a real-time watchdog)",
}

// exemptFiles are the production bindings of the seam, relative to the
// module root: the only code in the simulator-driven packages allowed to
// touch the OS.
var exemptFiles = []string{"rt/system.go"}

// forbiddenCalls maps an import path to its functions that bypass the
// seam, each with the reason and the replacement.
var forbiddenCalls = map[string]map[string]string{
	"time": {
		"Now":       "reads the wall clock; use rt.Runtime.Now",
		"Sleep":     "waits on the wall clock; use rt.Runtime.Sleep",
		"After":     "starts a wall-clock timer; use rt.Runtime.Sleep or rt.WithTimeout",
		"AfterFunc": "starts a wall-clock timer; use rt.Runtime.AfterFunc",
		"NewTimer":  "starts a wall-clock timer; use rt.Runtime.Sleep or rt.Runtime.AfterFunc",
		"NewTicker": "starts a wall-clock ticker; use rt.Runtime.Sleep in a loop",
		"Tick":      "starts a wall-clock ticker; use rt.Runtime.Sleep in a loop",
		"Since":     "reads the wall clock; subtract from rt.Runtime.Now",
		"Until":     "reads the wall clock; subtract rt.Runtime.Now",
	},
	"context": {
		"WithTimeout":       "uses a wall-clock timer the simulator cannot see; use rt.WithTimeout",
		"WithTimeoutCause":  "uses a wall-clock timer the simulator cannot see; use rt.WithTimeout",
		"WithDeadline":      "uses a wall-clock timer the simulator cannot see; use rt.WithTimeout",
		"WithDeadlineCause": "uses a wall-clock timer the simulator cannot see; use rt.WithTimeout",
	},
}

// forbiddenImports maps an import path (or, with a trailing slash, a
// path prefix) to the reason it may not be used at all.
var forbiddenImports = map[string]string{
	"math/rand":               "is not seeded by the simulator; draw from rt.Runtime.Rand",
	"math/rand/v2":            "is not seeded by the simulator; draw from rt.Runtime.Rand",
	"crypto/rand":             "is not seeded by the simulator; draw from rt.Runtime.Rand",
	"github.com/google/uuid":  "draws IDs the simulator cannot replay; use rt.NewID with rt.Runtime.Rand",
	"github.com/google/uuid/": "draws IDs the simulator cannot replay; use rt.NewID with rt.Runtime.Rand",
}

// goStmt is the name findings use for a bare go statement.
const goStmt = "go statement"

// finding is one violation of the rule.
type finding struct {
	pos  token.Position
	rule string // the table entry: "time.Now", "math/rand", goStmt, "dot import of time"
	what string // the construct as written: "clock.Now", "math/rand"
	why  string
}

func (f finding) String() string {
	what := f.what
	if what != f.rule {
		what += " (" + f.rule + ")"
	}
	return fmt.Sprintf("%s: %s %s [determinism rule: code the simulator drives goes through the rt seam]", f.pos, what, f.why)
}

// forbiddenImport returns the forbiddenImports entry that bans importing
// p, and its reason, if there is one.
func forbiddenImport(p string) (rule, why string, ok bool) {
	if why, ok := forbiddenImports[p]; ok {
		return p, why, true
	}
	for prefix, why := range forbiddenImports {
		if strings.HasSuffix(prefix, "/") && strings.HasPrefix(p, prefix) {
			return prefix, why, true
		}
	}
	return "", "", false
}

// importName returns the identifier a file uses for the import spec:
// its explicit name, or the package name, taken to be the last path
// element that is not a major-version suffix.
func importName(spec *ast.ImportSpec, p string) string {
	if spec.Name != nil {
		return spec.Name.Name
	}
	base := path.Base(p)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" {
		base = path.Base(path.Dir(p))
	}
	return base
}

// checkFile returns the violations in f. It is syntactic: a selector
// X.Sel counts when X is the name under which the file imports a watched
// package. A local variable shadowing that name is reported too, which
// errs on the side of failing.
func checkFile(fset *token.FileSet, f *ast.File) []finding {
	var out []finding
	report := func(pos token.Pos, rule, what, why string) {
		out = append(out, finding{pos: fset.Position(pos), rule: rule, what: what, why: why})
	}

	// watched maps a file-local package name to its import path.
	watched := make(map[string]string)
	for _, spec := range f.Imports {
		p, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			report(spec.Pos(), "import path", spec.Path.Value, "is an unreadable import path")
			continue
		}
		rule, why, banned := forbiddenImport(p)
		if banned {
			report(spec.Pos(), rule, p, why)
		}
		if _, calls := forbiddenCalls[p]; !calls && !banned {
			continue
		}
		switch name := importName(spec, p); name {
		case "_":
		case ".":
			report(spec.Pos(), "dot import of "+p, "dot import of "+p, "hides its uses from this check; import it by name")
		default:
			watched[name] = p
		}
	}

	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			report(n.Pos(), goStmt, goStmt, "starts a task the simulator cannot schedule; use rt.Runtime.Go")
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok {
				break
			}
			p, ok := watched[id.Name]
			if !ok {
				break
			}
			what := id.Name + "." + n.Sel.Name
			if why, ok := forbiddenCalls[p][n.Sel.Name]; ok {
				report(n.Pos(), p+"."+n.Sel.Name, what, why)
			} else if rule, why, ok := forbiddenImport(p); ok {
				report(n.Pos(), rule, what, why)
			}
		}
		return true
	})
	return out
}

// moduleRoot walks up from the working directory to the go.mod of
// modulePath.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if !bytes.Contains(mod, []byte("module "+modulePath+"\n")) {
				t.Fatalf("%s/go.mod is not module %s", dir, modulePath)
			}
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod found above the working directory")
		}
		dir = parent
	}
}

// sourceFiles returns the non-test .go files directly in root/dir, as
// slash-separated paths relative to root. A missing directory or one
// with no such files is an error, so that a rename cannot silently turn
// the check off.
func sourceFiles(root, dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w (it moved?)", dir, err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			files = append(files, path.Join(dir, name))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("directory %s has no Go source files (it moved?)", dir)
	}
	return files, nil
}

// TestDeterminismRule checks every simulator-driven package.
func TestDeterminismRule(t *testing.T) {
	root := moduleRoot(t)
	exempt := make(map[string]bool)
	for _, f := range exemptFiles {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(f))); err != nil {
			t.Errorf("exempt file %s: %v (update exemptFiles if it moved)", f, err)
		}
		exempt[f] = true
	}
	fset := token.NewFileSet()
	checked := 0
	dirs := simDrivenDirs(t, root)
	for _, dir := range dirs {
		files, err := sourceFiles(root, dir)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, rel := range files {
			if exempt[rel] {
				continue
			}
			src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
			if err != nil {
				t.Error(err)
				continue
			}
			f, err := parser.ParseFile(fset, rel, src, parser.SkipObjectResolution)
			if err != nil {
				t.Errorf("parse %s: %v", rel, err)
				continue
			}
			checked++
			for _, v := range checkFile(fset, f) {
				t.Error(v)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no files checked")
	}
	t.Logf("checked %d files in %d directories: %v", checked, len(dirs), dirs)
}

// selfTestSources exercise every rule. A line that must be reported ends
// in a comment `want "<what>"` naming the construct; every other line
// must not be.
var selfTestSources = map[string]string{
	"plain.go": `package snippet

import (
	"context"
	"crypto/rand" // want "crypto/rand"
	"time"

	"github.com/google/uuid" // want "github.com/google/uuid"
)

func f(ctx context.Context) {
	go func() {}() // want "go statement"
	_ = time.Now() // want "time.Now"
	now := time.Now // want "time.Now"
	time.Sleep(time.Second) // want "time.Sleep"
	<-time.After(time.Second) // want "time.After"
	time.AfterFunc(time.Second, func() {}) // want "time.AfterFunc"
	_ = time.NewTimer(time.Second) // want "time.NewTimer"
	_ = time.NewTicker(time.Second) // want "time.NewTicker"
	_ = time.Tick(time.Second) // want "time.Tick"
	_ = time.Since(now()) // want "time.Since"
	_ = time.Until(now()) // want "time.Until"
	_, _ = context.WithTimeout(ctx, time.Second) // want "context.WithTimeout"
	_, _ = context.WithTimeoutCause(ctx, time.Second, nil) // want "context.WithTimeoutCause"
	_, _ = context.WithDeadline(ctx, now()) // want "context.WithDeadline"
	_, _ = context.WithDeadlineCause(ctx, now(), nil) // want "context.WithDeadlineCause"
	_ = uuid.NewString() // want "github.com/google/uuid"
	_, _ = rand.Read(nil) // want "crypto/rand"
}
`,
	"renamed.go": `package snippet

import (
	stdctx "context"
	mrand "math/rand" // want "math/rand"
	"math/rand/v2" // want "math/rand/v2"
	clock "time"
	id "github.com/google/uuid" // want "github.com/google/uuid"
	uuidv "github.com/google/uuid/v9" // want "github.com/google/uuid/"
)

type fake struct{}

func (fake) Now() clock.Time { return clock.Time{} }

func g(ctx stdctx.Context) {
	_ = clock.Now() // want "time.Now"
	_, _ = stdctx.WithDeadline(ctx, clock.Time{}) // want "context.WithDeadline"
	_ = mrand.Int() // want "math/rand"
	_ = rand.N(3) // want "math/rand/v2"
	_ = id.New() // want "github.com/google/uuid"
	_ = uuidv.X // want "github.com/google/uuid/"
	var time fake
	_ = time.Now() // not the time package here: it is imported as clock
}
`,
	"dot.go": `package snippet

import (
	. "time" // want "dot import of time"
	. "context" // want "dot import of context"
	_ "math/rand" // want "math/rand"
)

func h() { go h() } // want "go statement"
`,
	"clean.go": `package snippet

import (
	"context"
	"time"

	"github.com/kelpie-ai/kelpie/rt"
)

type clock struct{ time time.Time }

func (c clock) Now() time.Time { return c.time }

func k(r rt.Runtime, ctx context.Context, c clock) error {
	_ = c.Now()
	_ = r.Now()
	_ = c.time.After(c.time)
	d := 3 * time.Second
	ctx, cancel := rt.WithTimeout(r, ctx, d)
	defer cancel()
	ctx, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	r.Go("task", func() {})
	stop := r.AfterFunc(d, "timer", func() {})
	stop()
	var t time.Time
	_ = t.Sub(t) + time.Duration(5) + time.Unix(0, 0).Sub(t)
	_ = t.After(t)
	_ = rt.NewID(r.Rand("ids"), "agent")
	return r.Sleep(ctx, d)
}
`,
}

// wantedFindings returns, per line, the construct a `want "..."` comment
// on that line names.
func wantedFindings(t *testing.T, fset *token.FileSet, f *ast.File) map[int]string {
	t.Helper()
	want := make(map[int]string)
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			text, ok := strings.CutPrefix(c.Text, "// want ")
			if !ok {
				continue
			}
			what, err := strconv.Unquote(text)
			if err != nil {
				t.Fatalf("%s: bad want comment %q", fset.Position(c.Pos()), c.Text)
			}
			want[fset.Position(c.Pos()).Line] = what
		}
	}
	return want
}

// TestDeterminismCheckerSelfTest runs the checker over snippets holding
// each forbidden construct, so that it cannot silently pass.
func TestDeterminismCheckerSelfTest(t *testing.T) {
	names := make([]string, 0, len(selfTestSources))
	for name := range selfTestSources {
		names = append(names, name)
	}
	sort.Strings(names)
	exercised := make(map[string]bool)
	for _, name := range names {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, selfTestSources[name], parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		want := wantedFindings(t, fset, f)
		got := make(map[int][]string)
		for _, v := range checkFile(fset, f) {
			got[v.pos.Line] = append(got[v.pos.Line], v.rule)
			exercised[v.rule] = true
			if !strings.Contains(v.String(), v.pos.String()) || v.why == "" {
				t.Errorf("finding %q lacks its position or reason", v)
			}
		}
		for line, what := range want {
			found := false
			for _, g := range got[line] {
				found = found || g == what
			}
			if !found {
				t.Errorf("%s:%d: want %q reported, got %q", name, line, what, got[line])
			}
		}
		for line, whats := range got {
			for _, g := range whats {
				if want[line] != g {
					t.Errorf("%s:%d: unexpected finding %q", name, line, g)
				}
			}
		}
	}

	// Every rule in the tables must be exercised above.
	rules := []string{goStmt}
	for p, fns := range forbiddenCalls {
		for fn := range fns {
			rules = append(rules, p+"."+fn)
		}
	}
	for p := range forbiddenImports {
		rules = append(rules, p)
	}
	for _, r := range rules {
		if !exercised[r] {
			t.Errorf("rule %q has no self-test", r)
		}
	}
}

// TestDeterminismSourceFiles checks that a missing or empty directory is
// an error rather than a silent pass.
func TestDeterminismSourceFiles(t *testing.T) {
	root := t.TempDir()
	write := func(rel string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("package x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("onlytests/x_test.go")
	write("onlysub/sub/x.go")
	write("good/x.go")
	write("good/x_test.go")
	write("good/sub/y.go")

	for _, dir := range []string{"missing", "onlytests", "onlysub"} {
		if files, err := sourceFiles(root, dir); err == nil {
			t.Errorf("sourceFiles(%q) = %v, nil; want an error", dir, files)
		}
	}
	files, err := sourceFiles(root, "good")
	if err != nil || len(files) != 1 || files[0] != "good/x.go" {
		t.Errorf("sourceFiles(good) = %v, %v; want [good/x.go]", files, err)
	}
}
