package sandbox

import (
	_ "embed"
	"fmt"

	"github.com/evanw/esbuild/pkg/api"
)

// The harnesses that run inside the sandbox; see their own comments for
// the protocol.
var (
	//go:embed harness/harness.py
	harnessPython []byte
	//go:embed harness/harness.mjs
	harnessNode []byte
)

// stripTypes compiles TypeScript to JavaScript by removing its types
// (esbuild; no type checking). It returns the JavaScript, or a message
// saying where the source does not parse.
func stripTypes(code string) (js, problem string) {
	r := api.Transform(code, api.TransformOptions{
		Loader:     api.LoaderTS,
		Format:     api.FormatESModule,
		Target:     api.ESNext,
		Sourcefile: "tool.ts",
	})
	if len(r.Errors) > 0 {
		m := r.Errors[0]
		if m.Location != nil {
			return "", fmt.Sprintf("%s:%d:%d: %s", m.Location.File, m.Location.Line, m.Location.Column+1, m.Text)
		}
		return "", m.Text
	}
	return string(r.Code), ""
}
