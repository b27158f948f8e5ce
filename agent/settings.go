package agent

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strings"
)

// Agent settings that Letta clients (letta-code among them) send when they
// create or update an agent: compaction settings, the context window
// limit, whether the model may call tools in parallel, and secrets (the
// environment of the agent's tool executions). Kelpie stores them and
// reports them back; see Agent for what each one changes.

// Settings limits.
const (
	// ContextWindowTokensMax bounds an agent's context window limit.
	ContextWindowTokensMax = 1 << 24
	// CompactionSettingsBytesMax bounds the serialized compaction settings.
	CompactionSettingsBytesMax = 64 << 10
	// SecretsMax bounds the number of an agent's secrets.
	SecretsMax = 64
	// SecretKeyBytesMax bounds a secret's key (an environment variable name).
	SecretKeyBytesMax = 256
	// SecretValueBytesMax bounds a secret's value.
	SecretValueBytesMax = 16 << 10
	// SecretDescriptionBytesMax bounds a secret's description.
	SecretDescriptionBytesMax = 1 << 10
	// InitialMessagesMax bounds the messages an agent is created with.
	InitialMessagesMax = MessagesPerSendMax
)

// Secret is one of an agent's secrets: an environment variable for its
// tool executions. Values are stored with the agent and never logged, and
// no error message carries one.
type Secret struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	Description string `json:"description,omitempty"`
}

// compactionModes are the values of CompactionSettings' mode.
var compactionModes = []string{"all", "sliding_window", "self_compact_all", "self_compact_sliding_window"}

// compactionFields are the fields of Letta's CompactionSettings, each with
// a check of its value (null is allowed where Letta allows it).
var compactionFields = map[string]func(v any) string{
	"model":                     nullable(isString),
	"model_settings":            nullable(isObject),
	"prompt":                    nullable(isString),
	"prompt_acknowledgement":    isBool,
	"clip_chars":                nullable(isInteger),
	"mode":                      isOneOf(compactionModes),
	"sliding_window_percentage": isNumber,
}

// CheckCompactionSettings validates compaction settings as Letta's
// CompactionSettings schema has them: only its fields, each of its type,
// within CompactionSettingsBytesMax.
func CheckCompactionSettings(s map[string]any) error {
	if s == nil {
		return nil
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		check, known := compactionFields[k]
		if !known {
			names := make([]string, 0, len(compactionFields))
			for n := range compactionFields {
				names = append(names, n)
			}
			sort.Strings(names)
			return invalidf("compaction_settings: unknown field %q (known: %s)", truncateChars(k, 64), strings.Join(names, ", "))
		}
		if want := check(s[k]); want != "" {
			return invalidf("compaction_settings.%s must be %s", k, want)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return invalidf("compaction_settings: %v", err)
	}
	if len(b) > CompactionSettingsBytesMax {
		return invalidf("compaction_settings is %d bytes, over the limit of %d", len(b), CompactionSettingsBytesMax)
	}
	return nil
}

// Value checks: each returns "" for a valid value, or what the value must
// be.

func nullable(check func(any) string) func(any) string {
	return func(v any) string {
		if v == nil {
			return ""
		}
		if want := check(v); want != "" {
			return want + " or null"
		}
		return ""
	}
}

func isString(v any) string {
	if _, ok := v.(string); !ok {
		return "a string"
	}
	return ""
}

func isObject(v any) string {
	if _, ok := v.(map[string]any); !ok {
		return "an object"
	}
	return ""
}

func isBool(v any) string {
	if _, ok := v.(bool); !ok {
		return "a boolean"
	}
	return ""
}

func isNumber(v any) string {
	if f, ok := v.(float64); !ok || math.IsInf(f, 0) || math.IsNaN(f) {
		return "a number"
	}
	return ""
}

func isInteger(v any) string {
	if f, ok := v.(float64); !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return "an integer"
	}
	return ""
}

func isOneOf(values []string) func(any) string {
	return func(v any) string {
		if s, ok := v.(string); !ok || !slices.Contains(values, s) {
			return "one of " + strings.Join(values, ", ")
		}
		return ""
	}
}

// checkContextWindowLimit validates a context window limit in tokens.
func checkContextWindowLimit(n int) error {
	if n <= 0 || n > ContextWindowTokensMax {
		return invalidf("context_window_limit %d outside 1..%d tokens", n, ContextWindowTokensMax)
	}
	return nil
}

// checkSecrets validates secrets: at most SecretsMax, each key an
// environment variable name used once, each part within its limit. Errors
// name keys, never values.
func checkSecrets(secrets []Secret) error {
	if len(secrets) > SecretsMax {
		return invalidf("%d secrets, over the limit of %d", len(secrets), SecretsMax)
	}
	seen := make(map[string]bool, len(secrets))
	for _, s := range secrets {
		if !envName(s.Key) || len(s.Key) > SecretKeyBytesMax {
			return invalidf("secret key %q is not an environment variable name (letters, digits and _, not starting with a digit, at most %d bytes)",
				truncateChars(s.Key, 64), SecretKeyBytesMax)
		}
		if seen[s.Key] {
			return invalidf("secret %q is given twice", s.Key)
		}
		seen[s.Key] = true
		if err := checkText("secret "+s.Key+" value", s.Value, SecretValueBytesMax); err != nil {
			return invalidf("the value of secret %q is over %d bytes or not valid UTF-8", s.Key, SecretValueBytesMax)
		}
		if err := checkText("secret "+s.Key+" description", s.Description, SecretDescriptionBytesMax); err != nil {
			return err
		}
	}
	return nil
}

// envName reports whether s is an environment variable name: ASCII
// letters, digits and underscores, not starting with a digit.
func envName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// initialRoles are the roles of the messages an agent may be created with.
var initialRoles = []string{"user", "assistant", "system"}

// checkInitialMessages validates the messages an agent is created with.
func checkInitialMessages(msgs []InputMessage) error {
	if len(msgs) > InitialMessagesMax {
		return invalidf("%d initial messages, over the limit of %d", len(msgs), InitialMessagesMax)
	}
	for i, m := range msgs {
		if !slices.Contains(initialRoles, m.Role) {
			return invalidf("initial message %d: role %q is not one of %s", i, m.Role, strings.Join(initialRoles, ", "))
		}
		if err := checkText("initial message", m.Content, MessageBytesMax); err != nil {
			return err
		}
	}
	return nil
}
