package fakellm

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestFakeParseDirectives(t *testing.T) {
	d, err := parseDirectives("  hello\n\t@tool a_b-1 {\"x\": [1, 2]}\n@tool\tnoargs\n@tool c{\"y\":null}\n@reply one\n@reply\n@sleep 1.5s\nbye @tool not-a-directive\n@tools is text\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []toolCall{{"a_b-1", `{"x":[1,2]}`}, {"noargs", "{}"}, {"c", `{"y":null}`}}
	if len(d.tools) != len(want) {
		t.Fatalf("tools = %v, want %v", d.tools, want)
	}
	for i := range want {
		if d.tools[i] != want[i] {
			t.Errorf("tool %d = %v, want %v", i, d.tools[i], want[i])
		}
	}
	if !d.hasReply || d.reply != "one\n" {
		t.Errorf("reply = %q (%v), want \"one\\n\"", d.reply, d.hasReply)
	}
	if d.sleep != 1500*time.Millisecond {
		t.Errorf("sleep = %v", d.sleep)
	}
	if d.text != "hello\nbye @tool not-a-directive\n@tools is text" {
		t.Errorf("text = %q", d.text)
	}

	d, err = parseDirectives("@error 503\n@sleep 250")
	if err != nil || d.err == nil || d.err.status != 503 || d.err.typ != typeServer || d.sleep != 250*time.Millisecond || !d.decides() {
		t.Errorf("error+sleep: %+v %v", d, err)
	}
	d, err = parseDirectives("@sleep 10m")
	if err != nil || d.sleep != MaxSleep || d.decides() {
		t.Errorf("long sleep: %v %v %v, want %v and no decision", d.sleep, err, d.decides(), MaxSleep)
	}
	for _, bad := range []string{"@tool", "@tool bad!name {}", "@tool f [1]", "@tool f {\"a\":", "@tool f null", "@error", "@error 99", "@error abc", "@sleep", "@sleep -1s", "@sleep NaN", "@sleep later"} {
		if _, err := parseDirectives("x\n" + bad); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("parseDirectives(%q) = %v, want an error on line 2", bad, err)
		}
	}
}

func TestFakeFragments(t *testing.T) {
	for _, s := range []string{"", "{}", `{"message":"Echo: hi"}`, strings.Repeat("☕é", 40), strings.Repeat("x", 100)} {
		frags := fragments(s)
		if strings.Join(frags, "") != s {
			t.Errorf("fragments(%q) do not join back", s)
		}
		if len(s) >= 2 && len(frags) < 2 {
			t.Errorf("fragments(%q) = %q, want several", s, frags)
		}
		for _, f := range frags {
			if !utf8.ValidString(f) {
				t.Errorf("fragment %q splits a rune", f)
			}
		}
	}
}

func TestFakeUnwrapLetta(t *testing.T) {
	for in, want := range map[string]string{
		`{"type": "user_message", "message": "hi\n@reply x", "time": "now"}`: "hi\n@reply x",
		`{"type": "system_alert", "message": "m"}`:                           `{"type": "system_alert", "message": "m"}`,
		`plain`:          "plain",
		`{"message": 3}`: `{"message": 3}`,
	} {
		if got := unwrapLetta(in); got != want {
			t.Errorf("unwrapLetta(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFakeEmbedEdgeCases(t *testing.T) {
	for _, text := range []string{"!!!", "the and of", "x"} {
		v := Embed(text, 16)
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		if n < 0.999 || n > 1.001 {
			t.Errorf("Embed(%q): squared norm %v", text, n)
		}
	}
	a, b := Embed("Cats like fish", 64), Embed("cats LIKE fish.", 64)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("case and punctuation change the vector")
		}
	}
}
