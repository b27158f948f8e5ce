package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestServeEmbeddingModelConfig(t *testing.T) {
	env := func(k string) string {
		if k == envEmbeddingModel {
			return " openai/text-embedding-3-small "
		}
		return ""
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "openai/text-embedding-3-small"},
		{[]string{"--embedding-model", "openai/nomic-embed-text"}, "openai/nomic-embed-text"},
		{[]string{"--embedding-model", ""}, ""}, // an explicit empty flag turns the default off
	} {
		var stderr bytes.Buffer
		cmd := newServeCmd(&stderr, env)
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		var f serveFlags
		f.embeddingModel, _ = cmd.Flags().GetString("embedding-model")
		if got := serveConfig(cmd, f, env).EmbeddingModel; got != tc.want {
			t.Errorf("%v: embedding model %q, want %q", tc.args, got, tc.want)
		}
	}
}

// A default embedding model no configured provider can serve stops the
// server at startup, with advice. (Anthropic has no embeddings, so this
// holds whatever provider the environment configures.)
func TestServeBadEmbeddingModel(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve", "--addr", "127.0.0.1:0", "--storage", "memory", "--embedding-model", "anthropic/claude-sonnet-4-5"}, &stdout, &stderr, noEnv)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{`default embedding model "anthropic/claude-sonnet-4-5"`, "--embedding-model", envEmbeddingModel} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}
