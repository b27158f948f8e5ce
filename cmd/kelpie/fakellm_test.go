package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var fakeLLMListening = regexp.MustCompile(`fake LLM listening on (http://(127\.0\.0\.1:\d+)/v1) \(set OPENAI_BASE_URL to this\)`)

// TestFakeLLMCommand runs `kelpie fake-llm` as a process, talks to it
// over HTTP and stops it with a signal; it must exit 0.
func TestFakeLLMCommand(t *testing.T) {
	bin := kelpieBinary(t)
	script := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(script, []byte(`[{"match": {"last_user_contains": "ping"}, "reply": {"content": "pong"}, "times": 1}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		args []string
		env  []string
	}{
		{"flags/SIGTERM", syscall.SIGTERM, []string{"fake-llm", "--addr", "127.0.0.1:0", "--script", script}, nil},
		{"env/SIGINT", syscall.SIGINT, []string{"fake-llm"}, []string{envFakeLLMAddr + "=127.0.0.1:0", envFakeLLMScript + "=" + script}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "KELPIE_") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, tc.env...)
			var stdout, stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{}) // closed when the process has exited
			var waitErr error           // Wait's result, set before done closes
			go func() {
				waitErr = cmd.Wait()
				close(done)
			}()
			defer func() {
				select {
				case <-done:
				default:
					cmd.Process.Kill()
					<-done
				}
				if t.Failed() {
					t.Logf("stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
				}
			}()

			// Wait for the listening line, which names the real port.
			var base string
			deadline := time.Now().Add(30 * time.Second)
			for base == "" {
				if m := fakeLLMListening.FindStringSubmatch(stderr.String()); m != nil {
					base = m[1]
					break
				}
				select {
				case <-done:
					t.Fatalf("exited before listening: %v", waitErr)
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatal("no listening line within 30s")
				}
			}

			client := &http.Client{Timeout: 5 * time.Second}
			res, err := client.Get(base + "/models")
			if err != nil {
				t.Fatal(err)
			}
			var models struct {
				Object string `json:"object"`
				Data   []struct {
					ID string `json:"id"`
				} `json:"data"`
			}
			err = json.NewDecoder(res.Body).Decode(&models)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 || models.Object != "list" || len(models.Data) != 2 ||
				models.Data[0].ID != "fake-model" || models.Data[1].ID != "fake-embedding" {
				t.Fatalf("GET /v1/models: %d %+v %v", res.StatusCode, models, err)
			}

			// The script is loaded: its rule answers once, then the default.
			for _, want := range []string{"pong", "Echo: ping"} {
				res, err := client.Post(base+"/chat/completions", "application/json",
					strings.NewReader(`{"model":"fake-model","messages":[{"role":"user","content":"ping"}]}`))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || !strings.Contains(string(b), `"content":"`+want+`"`) {
					t.Errorf("chat: %d %s, want content %q", res.StatusCode, b, want)
				}
			}

			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
				if waitErr != nil {
					t.Fatalf("exit after %v: %v, want exit 0", tc.sig, waitErr)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("still running 30s after %v", tc.sig)
			}
			logs := stderr.String()
			for _, want := range []string{"path=/v1/models status=200", "script rule 1", "fake LLM stopped"} {
				if !strings.Contains(logs, want) {
					t.Errorf("stderr lacks %q", want)
				}
			}
		})
	}
}

// TestFakeLLMCommandErrors checks the command's failures in process:
// usage mistakes exit 2, a bad script or a busy port exit 1 with advice.
func TestFakeLLMCommandErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	badScript := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badScript, []byte(`[{"match": {"last_rol": "tool"}, "reply": {"content": "x"}}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		name   string
		args   []string
		getenv func(string) string
		code   int
		want   []string
	}{
		{"extra argument", []string{"fake-llm", "now"}, noEnv, 2, []string{"takes no arguments"}},
		{"unknown flag", []string{"fake-llm", "--port", "1"}, noEnv, 2, []string{"unknown flag", "--help"}},
		{"bad dimensions", []string{"fake-llm", "--dimensions", "0"}, noEnv, 2, []string{"--dimensions 0"}},
		{"missing script", []string{"fake-llm", "--script", filepath.Join(dir, "nope.json")}, noEnv, 1, []string{"nope.json", "--script or " + envFakeLLMScript}},
		{"bad script", []string{"fake-llm", "--script", badScript}, noEnv, 1, []string{"rule 1", `unknown field "last_rol"`, "kelpie fake-llm --help"}},
		{"port in use", []string{"fake-llm", "--addr", ln.Addr().String()}, noEnv, 1, []string{"address already in use", "--addr or " + envFakeLLMAddr}},
		{"port in use via env", []string{"fake-llm"}, func(k string) string {
			if k == envFakeLLMAddr {
				return ln.Addr().String()
			}
			return ""
		}, 1, []string{ln.Addr().String(), "already in use"}},
		{"bad address", []string{"fake-llm", "--addr", "nonsense"}, noEnv, 1, []string{"nonsense", "host:port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr, tc.getenv)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, &stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, &stderr)
				}
			}
			if strings.Contains(stderr.String(), "listening") {
				t.Errorf("stderr claims to listen:\n%s", &stderr)
			}
		})
	}
}

func TestFakeLLMHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"fake-llm", "--help"}, &stdout, &stderr, func(string) string { return "" }); code != 0 {
		t.Fatalf("exit code %d; stderr %s", code, &stderr)
	}
	for _, want := range []string{"@tool NAME", "@reply", "@error 429", "@sleep", "--script", envFakeLLMAddr, "OPENAI_BASE_URL"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	var root bytes.Buffer
	run([]string{"--help"}, &root, &stderr, func(string) string { return "" })
	if !strings.Contains(root.String(), "fake-llm") {
		t.Errorf("root help does not list fake-llm:\n%s", &root)
	}
}
