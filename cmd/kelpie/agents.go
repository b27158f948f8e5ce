package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newAgentsCmd builds `kelpie agents` and its subcommands.
func newAgentsCmd(stdout io.Writer, getenv func(string) string) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "List, create, inspect and delete agents on a running server",
		Long: `Manage the agents of a running Kelpie (or Letta) server over its REST API.

  kelpie agents list [--limit N] [--json]
  kelpie agents create --name NAME [--model provider/model] [--system TEXT] [--block label=value ...] [--json]
  kelpie agents get AGENT_ID [--json]
  kelpie agents delete AGENT_ID

The server is --server or KELPIE_SERVER (default ` + defaultServer + `); a server
started with a password needs --password or KELPIE_SERVER_PASSWORD.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{fmt.Errorf("unknown command %q for %s", args[0], cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cf.add(cmd.PersistentFlags())
	connect := func(cmd *cobra.Command) (*apiClient, error) { return cf.client(cmd, getenv) }
	cmd.AddCommand(
		newAgentsListCmd(stdout, connect),
		newAgentsCreateCmd(stdout, connect),
		newAgentsGetCmd(stdout, connect),
		newAgentsDeleteCmd(stdout, connect),
	)
	return cmd
}

// connectFunc returns the client a command's flags select.
type connectFunc func(cmd *cobra.Command) (*apiClient, error)

// oneAgentID accepts exactly one positional argument, the agent ID.
func oneAgentID(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return &usageError{fmt.Errorf("%s takes one argument, the agent ID (see `kelpie agents list`); got %d", cmd.CommandPath(), len(args))}
	}
	return nil
}

// cmdContext returns the command's context, or a background one.
func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func newAgentsListCmd(stdout io.Writer, connect connectFunc) *cobra.Command {
	var (
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List agents, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return &usageError{fmt.Errorf("--limit must be at least 1, got %d", limit)}
			}
			c, err := connect(cmd)
			if err != nil {
				return err
			}
			raw, err := c.listAgentsRaw(cmdContext(cmd), limit)
			if err != nil {
				return err
			}
			if asJSON {
				return writeIndented(stdout, raw)
			}
			var agents []agentState
			if err := decodeResponse(http.MethodGet, "/v1/agents", raw, &agents); err != nil {
				return err
			}
			return printAgentTable(stdout, agents)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "list at most this many agents")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON instead of a table")
	return cmd
}

// printAgentTable prints agents as a table.
func printAgentTable(w io.Writer, agents []agentState) error {
	if len(agents) == 0 {
		_, err := fmt.Fprintln(w, "No agents yet. Create one with `kelpie agents create --name NAME`.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tMODEL\tCREATED")
	for _, a := range agents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.ID, oneLine(a.Name), orDash(a.model()), formatTime(a.CreatedAt))
	}
	return tw.Flush()
}

func newAgentsCreateCmd(stdout io.Writer, connect connectFunc) *cobra.Command {
	var (
		req    createAgentRequest
		blocks []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an agent and print its ID",
		Long: `Create an agent and print its ID (or, with --json, the agent).

  kelpie agents create --name support --model openai/gpt-4o-mini \
      --block persona="I am a patient support agent." --block human="Name: Ada"

Each --block adds a core memory block, label=value; the value may contain '='.
Without --model the server's default model is used; without --system, the
default system prompt.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, b := range blocks {
				label, value, ok := strings.Cut(b, "=")
				label = strings.TrimSpace(label)
				if !ok || label == "" {
					return &usageError{fmt.Errorf("--block %q: want label=value, for example --block human=\"Name: Ada\"", b)}
				}
				req.MemoryBlocks = append(req.MemoryBlocks, blockCreate{Label: label, Value: value})
			}
			c, err := connect(cmd)
			if err != nil {
				return err
			}
			raw, err := c.createAgentRaw(cmdContext(cmd), req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeIndented(stdout, raw)
			}
			var a agentState
			if err := decodeResponse(http.MethodPost, "/v1/agents", raw, &a); err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, a.ID)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "the agent's name (default: its ID)")
	f.StringVar(&req.Model, "model", "", "model handle, provider/model (for example openai/gpt-4o-mini)")
	f.StringVar(&req.System, "system", "", "system prompt (default: the server's)")
	f.StringArrayVar(&blocks, "block", nil, "core memory block label=value (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the created agent as JSON instead of its ID")
	return cmd
}

func newAgentsGetCmd(stdout io.Writer, connect connectFunc) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get AGENT_ID",
		Short: "Show an agent and its memory blocks",
		Args:  oneAgentID,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect(cmd)
			if err != nil {
				return err
			}
			raw, err := c.getAgentRaw(cmdContext(cmd), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeIndented(stdout, raw)
			}
			var a agentState
			if err := decodeResponse(http.MethodGet, agentPath(args[0]), raw, &a); err != nil {
				return err
			}
			return printAgent(stdout, &a)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON instead of a summary")
	return cmd
}

// systemPreviewMax bounds the system prompt shown by `agents get`.
const systemPreviewMax = 200

// printAgent prints a readable summary of an agent.
func printAgent(w io.Writer, a *agentState) error {
	var b strings.Builder
	field := func(name, value string) { fmt.Fprintf(&b, "%-12s %s\n", name+":", value) }
	field("ID", a.ID)
	field("Name", oneLine(a.Name))
	field("Model", orDash(a.model()))
	if a.AgentType != "" {
		field("Type", a.AgentType)
	}
	if a.Description != nil && *a.Description != "" {
		field("Description", oneLine(*a.Description))
	}
	if len(a.Tags) > 0 {
		field("Tags", strings.Join(a.Tags, ", "))
	}
	field("Created", formatTime(a.CreatedAt))
	if a.UpdatedAt != "" && a.UpdatedAt != a.CreatedAt {
		field("Updated", formatTime(a.UpdatedAt))
	}
	tools := make([]string, 0, len(a.Tools))
	for _, t := range a.Tools {
		tools = append(tools, t.Name)
	}
	field("Tools", orDash(strings.Join(tools, ", ")))
	field("System", fmt.Sprintf("%s (%d chars)", truncate(oneLine(a.System), systemPreviewMax), len([]rune(a.System))))
	blocks := a.memoryBlocks()
	fmt.Fprintf(&b, "Memory blocks (%d):\n", len(blocks))
	for _, blk := range blocks {
		ro := ""
		if blk.ReadOnly {
			ro = ", read-only"
		}
		fmt.Fprintf(&b, "  %s (%d/%d chars%s)\n", blk.Label, len([]rune(blk.Value)), blk.Limit, ro)
		if blk.Value == "" {
			b.WriteString("    (empty)\n")
			continue
		}
		for _, line := range strings.Split(strings.TrimRight(blk.Value, "\n"), "\n") {
			b.WriteString("    " + line + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newAgentsDeleteCmd(stdout io.Writer, connect connectFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "delete AGENT_ID",
		Short: "Delete an agent and everything it remembers",
		Args:  oneAgentID,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect(cmd)
			if err != nil {
				return err
			}
			if err := c.deleteAgent(cmdContext(cmd), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "Deleted agent %s.\n", args[0])
			return err
		},
	}
}

// writeIndented writes a JSON body indented, ending in a newline.
func writeIndented(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return errors.New("the server's answer is not JSON: " + truncate(string(raw), errorBodyMax))
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// formatTime renders an RFC 3339 timestamp in local time to the second,
// or returns it unchanged if it does not parse.
func formatTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return orDash(s)
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine collapses runs of whitespace, newlines included, to one space.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// truncate shortens s to at most max runes, ending in an ellipsis when
// it cut.
func truncate(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}
