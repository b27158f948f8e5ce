package sandbox

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/kelpie-ai/kelpie/toolschema"
)

// The run_code tool, Letta's built-in code runner: the model gives a
// program and its language, the program runs in a fresh sandbox (with
// Source.Script set), and the tool returns what it printed as Letta's
// result document:
//
//	{"results": [], "logs": {"stdout": ["…"], "stderr": ["…"]}, "error": null}
//
// where "error", when the program failed, is {"name", "value",
// "traceback"}. "results" (a notebook's last-expression values in Letta's
// hosted runner) is always empty here: a program's output is what it
// prints.
// Its name, description and schema are package toolschema's.
const RunCodeName = toolschema.NameRunCode

// RunCodeParameters is run_code's JSON Schema.
var RunCodeParameters = toolschema.RunCodeTool().Parameters

// RunCodeSource is the Source for a run_code call with the given
// arguments, or an error Result for arguments that do not name a program.
// A language run_code does not support still makes a Source: running it
// gives the model the error that says which languages it does support.
func RunCodeSource(arguments json.RawMessage) (*toolexec.Source, *toolexec.Result) {
	var args struct {
		Code     *string `json:"code"`
		Language *string `json:"language"`
	}
	if err := json.Unmarshal(arguments, &args); err != nil {
		r := toolexec.Errorf("run_code's arguments must be a JSON object with code and language: %v", err)
		return nil, &r
	}
	if args.Code == nil || args.Language == nil {
		r := toolexec.Errorf("run_code needs both code and language")
		return nil, &r
	}
	lang := *args.Language
	if l, ok := normalizeLanguage(lang); ok {
		lang = l
	}
	return &toolexec.Source{Language: lang, Code: *args.Code, Script: true}, nil
}

// runCodeDoc is run_code's result document.
type runCodeDoc struct {
	Results []string     `json:"results"`
	Logs    runCodeLogs  `json:"logs"`
	Error   *runCodeFail `json:"error"`
}

type runCodeLogs struct {
	Stdout []string `json:"stdout"`
	Stderr []string `json:"stderr"`
}

type runCodeFail struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Traceback string `json:"traceback,omitempty"`
}

// runCodeReturn is the Return of a script call whose Result (its Return
// an error message, if it failed) is res and whose harness result frame,
// if it wrote one, is fr.
func runCodeReturn(res toolexec.Result, fr *frame) string {
	doc := runCodeDoc{Results: []string{}, Logs: runCodeLogs{Stdout: []string{}, Stderr: []string{}}}
	if res.Stdout != "" {
		doc.Logs.Stdout = []string{res.Stdout}
	}
	if res.Stderr != "" {
		doc.Logs.Stderr = []string{res.Stderr}
	}
	if res.Status == toolexec.StatusError {
		fail := &runCodeFail{Name: "Error", Value: res.Return}
		if fr != nil && !fr.OK {
			fail.Name = fr.Type
			fail.Value = strings.TrimPrefix(res.Return, fr.Type+": ")
			fail.Traceback = fr.Traceback
		}
		doc.Error = fail
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Sprintf(`{"error": {"name": "Error", "value": %q}}`, err.Error())
	}
	return string(b)
}
