package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// chatInput is what `kelpie chat` reads messages from; tests replace it.
var chatInput io.Reader = os.Stdin

// chatLineMax bounds one line of chat input.
const chatLineMax = 1 << 20

// newChatCmd builds `kelpie chat`.
func newChatCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	var (
		cf      clientFlags
		message string
	)
	cmd := &cobra.Command{
		Use:   "chat AGENT_ID",
		Short: "Talk to an agent: one message per line of input",
		Long: `Talk to an agent on a running server. Each line read from standard input is
sent as one user message, and the agent's turn is printed: its replies
("agent> "), its reasoning ("(thinking) "), the tools it calls ("→ name(args)")
and what they return ("← status: result"), memory edits marked, and the stop
reason and token usage. At a terminal the prompt is "you> "; end with Ctrl-D,
/exit or /quit. Input may also be piped, one message per line:

  printf 'Hi, I am Ada.\nWhat is my name?\n' | kelpie chat agent-…

--message sends one message, prints the turn and exits.`,
		Args: oneAgentID,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			s := &chatSession{
				client:  c,
				agentID: args[0],
				out:     newTurnPrinter(stdout, colorEnabled(stdout, getenv)),
				stderr:  stderr,
			}
			if cmd.Flags().Changed("message") {
				if strings.TrimSpace(message) == "" {
					return &usageError{errors.New("--message is empty")}
				}
				return s.send(cmd, message)
			}
			return s.loop(cmd, chatInput, isTerminal(chatInput))
		},
	}
	cf.add(cmd.Flags())
	cmd.Flags().StringVarP(&message, "message", "m", "", "send this one message, print the turn and exit")
	return cmd
}

// chatSession is one `kelpie chat`.
type chatSession struct {
	client  *apiClient
	agentID string
	out     *turnPrinter
	stderr  io.Writer
}

// send sends one message and prints the turn.
func (s *chatSession) send(cmd *cobra.Command, text string) error {
	res, err := s.client.sendMessage(cmdContext(cmd), s.agentID, text)
	if err != nil {
		return err
	}
	return s.out.response(res)
}

// loop sends each line of in as a message until EOF. At a terminal it
// prompts, greets, and reports a failed turn without ending the session;
// with piped input the first failure ends it (and the exit code says so).
func (s *chatSession) loop(cmd *cobra.Command, in io.Reader, interactive bool) error {
	// Check the server, the password and the agent before reading input,
	// so that a mistake shows at once rather than after the first line.
	ag, err := s.client.getAgent(cmdContext(cmd), s.agentID)
	if err != nil {
		return err
	}
	if interactive {
		s.out.dim(fmt.Sprintf("Chatting with %s (%s, %s). Ctrl-D or /exit to leave.", oneLine(ag.Name), ag.ID, orDash(ag.model())))
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), chatLineMax)
	for {
		if interactive {
			s.out.prompt()
		}
		if !sc.Scan() {
			break
		}
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "":
			continue
		case "/exit", "/quit":
			return nil
		}
		if err := s.send(cmd, line); err != nil {
			if !interactive {
				return err
			}
			fmt.Fprintf(s.stderr, "kelpie: %v\n", err)
		}
	}
	if interactive {
		fmt.Fprintln(s.out.w) // end the prompt's line
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("reading messages: a line is longer than %d bytes", chatLineMax)
		}
		return fmt.Errorf("reading messages: %w", err)
	}
	return nil
}

// isTerminal reports whether r is a character device (a terminal).
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// colorEnabled reports whether to color output written to w: only at a
// terminal, and not when NO_COLOR is set or TERM is dumb.
func colorEnabled(w io.Writer, getenv func(string) string) bool {
	return isTerminal(w) && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}

// Printing a turn.

// toolResultMax bounds the tool arguments and results shown.
const toolResultMax = 200

// ANSI styles.
const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiBold   = "\x1b[1m"
	ansiCyan   = "\x1b[36m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiRed    = "\x1b[31m"
)

// turnPrinter prints an agent's turn one Letta message at a time, so that
// a whole LettaResponse (response) and a stream of messages (message,
// one per SSE event, stop_reason and usage_statistics included) print the
// same.
type turnPrinter struct {
	w          io.Writer
	color      bool
	stopReason string // from the turn's stop_reason message, until printed
	err        error  // the first write error
}

func newTurnPrinter(w io.Writer, color bool) *turnPrinter {
	return &turnPrinter{w: w, color: color}
}

// response prints a whole turn: each message, then the stop reason and
// usage line.
func (p *turnPrinter) response(r *lettaResponse) error {
	for _, m := range r.Messages {
		p.message(m)
	}
	if r.StopReason != nil {
		p.message(lettaMessage{MessageType: "stop_reason", StopReason: r.StopReason.StopReason})
	}
	if r.Usage != nil {
		p.message(lettaMessage{MessageType: "usage_statistics", usageStatistics: *r.Usage})
	}
	return p.finish()
}

// finish prints a stop reason no usage line followed, and returns the
// first write error.
func (p *turnPrinter) finish() error {
	if p.stopReason != "" {
		p.line(ansiDim, "["+p.stopReason+"]")
		p.stopReason = ""
	}
	return p.err
}

// message prints one Letta message.
func (p *turnPrinter) message(m lettaMessage) {
	switch m.MessageType {
	case "assistant_message":
		p.block(ansiBold+ansiGreen, "agent> ", string(m.Content))
	case "reasoning_message":
		p.block(ansiDim, "(thinking) ", m.Reasoning)
	case "hidden_reasoning_message":
		p.line(ansiDim, "(thinking) [hidden]")
	case "tool_call_message", "approval_request_message":
		calls := m.ToolCalls
		if len(calls) == 0 && m.ToolCall != nil {
			calls = []toolCall{*m.ToolCall}
		}
		for _, c := range calls {
			p.toolCall(c, m.MessageType == "approval_request_message")
		}
	case "tool_return_message":
		status := orDash(m.Status)
		style := ansiDim
		if m.Status == "error" {
			style = ansiRed
		}
		var result string
		if m.ToolReturn != nil {
			result = string(*m.ToolReturn)
		}
		text := "← " + status
		if result = oneLine(result); result != "" {
			text += ": " + truncate(result, toolResultMax)
		}
		p.line(style, text)
	case "user_message", "system_message":
		// The user's own input, or the system prompt: not part of the reply.
	case "stop_reason":
		p.stopReason = m.StopReason
	case "usage_statistics":
		u := m.usageStatistics
		parts := []string{}
		if p.stopReason != "" {
			parts = append(parts, p.stopReason)
			p.stopReason = ""
		}
		if u.StepCount > 0 {
			parts = append(parts, plural(u.StepCount, "step"))
		}
		parts = append(parts, fmt.Sprintf("%d tokens (%d prompt + %d completion)", u.TotalTokens, u.PromptTokens, u.CompletionTokens))
		p.line(ansiDim, "["+strings.Join(parts, " · ")+"]")
	default: // a message type this client does not know yet
		text := string(m.Content)
		if text == "" {
			text = m.Reasoning
		}
		p.line(ansiDim, "["+m.MessageType+"] "+truncate(oneLine(text), toolResultMax))
	}
}

// toolCall prints one tool call. Memory tools (their names contain
// "memory") are highlighted, and those that change memory (all but the
// searches) are marked as edits.
func (p *turnPrinter) toolCall(c toolCall, needsApproval bool) {
	text := "→ " + c.Name + "(" + truncate(formatArgs(c.Arguments), toolResultMax) + ")"
	style := ansiCyan
	if strings.Contains(c.Name, "memory") {
		style = ansiYellow
		if !strings.Contains(c.Name, "search") {
			text += "  ✎ memory edit"
			style = ansiBold + ansiYellow
		}
	}
	if needsApproval {
		text += "  (awaiting approval)"
	}
	p.line(style, text)
}

// formatArgs renders a tool call's JSON arguments as key=value pairs in
// their order, or as compact JSON when they are not an object.
func formatArgs(args string) string {
	dec := json.NewDecoder(strings.NewReader(args))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(args)) == nil {
			return buf.String()
		}
		return oneLine(args)
	}
	var pairs []string
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return oneLine(args)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return oneLine(args)
		}
		var buf bytes.Buffer
		json.Compact(&buf, v)
		pairs = append(pairs, fmt.Sprintf("%v=%s", key, buf.String()))
	}
	return strings.Join(pairs, ", ")
}

// block prints text after prefix, indenting its further lines under the
// first.
func (p *turnPrinter) block(style, prefix, text string) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	indent := strings.Repeat(" ", len([]rune(prefix)))
	for i, l := range lines {
		if i == 0 {
			lines[i] = prefix + l
		} else {
			lines[i] = indent + l
		}
	}
	p.line(style, strings.Join(lines, "\n"))
}

// line prints text in style (when coloring) and a newline.
func (p *turnPrinter) line(style, text string) {
	if p.color && style != "" {
		text = style + text + ansiReset
	}
	p.write(text + "\n")
}

// dim prints a dimmed line.
func (p *turnPrinter) dim(text string) { p.line(ansiDim, text) }

// prompt prints the input prompt.
func (p *turnPrinter) prompt() {
	if p.color {
		p.write(ansiBold + "you> " + ansiReset)
		return
	}
	p.write("you> ")
}

func (p *turnPrinter) write(s string) {
	if p.err != nil {
		return
	}
	_, p.err = io.WriteString(p.w, s)
}

// plural renders n and a noun, adding an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
