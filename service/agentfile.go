package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/agentfile"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/tools"
)

// Agent files (package agentfile): Letta's portable form of agents.
//
// An export writes the agent's configuration (name, type, system prompt,
// description, tags, metadata, model and embedding handles), its blocks
// (its own and the shared ones it is attached to, with their current
// values), its tools (built-in ones by name and schema, custom ones with
// their source code), the tools that need approval (as requires_approval
// tool rules), and its message log in log order, preceded — as Letta's
// files are — by the compiled system prompt as the first, system, message.
//
// An import creates, for each agent of the file: its custom tools in the
// registry (reusing a tool of the same name, whose definition the file's
// replaces if OverrideExistingTools), its blocks (a block several agents
// of the file share becomes a standalone block they attach), and the agent
// with its history, in one transaction. What Kelpie has no equivalent for
// is left out, and ImportResult.Notes says what: tool rules other than
// requires_approval, secrets, groups, sources and files, MCP servers and
// MCP tools, built-in tools Kelpie lacks, skills, approval and image
// content, reasoning beside text, and the exact context window (Kelpie's
// is the most recent messages of the log).

// Limits of agent file imports.
const (
	// importNotesMax bounds the notes of one import.
	importNotesMax = 100
	// importCleanupTimeout bounds the removal of what a failed import
	// created.
	importCleanupTimeout = 30 * time.Second
	// exportContextWindow is the context window an export reports for
	// the agent's model (Kelpie does not know the model's own).
	exportContextWindow = 128000
)

// ImportOptions are the choices of an import (the form fields of Letta's
// POST /v1/agents/import).
type ImportOptions struct {
	// Name, if set, names every imported agent.
	Name string
	// AppendCopySuffix appends "_copy" to the file's agent names (not to
	// Name).
	AppendCopySuffix bool
	// OverrideExistingTools replaces the definition of a custom tool that
	// has the name of one of the file's; otherwise that tool is reused as
	// it is.
	OverrideExistingTools bool
	// StripMessages imports the agents without their histories.
	StripMessages bool
	// Model and Embedding, if set, replace the file's model handles.
	Model     string
	Embedding string
	// ProjectID and Secrets (names) are accepted and not kept: Kelpie
	// has neither projects nor tool secrets. The notes say so.
	ProjectID string
	Secrets   []string
}

// ImportResult is what an import did.
type ImportResult struct {
	// AgentIDs are the new agents, in the file's order.
	AgentIDs []string
	// Notes say what of the file Kelpie did not keep.
	Notes []string
}

// ImportAgentFile creates the agents of f, their tools, blocks and
// histories, and returns their IDs with notes on what it left out. It
// checks everything it can before it writes anything; if creating an
// agent fails, it removes the agents and shared blocks it created (tools
// it created or replaced stay).
func (s *Service) ImportAgentFile(ctx context.Context, f *agentfile.File, opts ImportOptions) (*ImportResult, error) {
	if err := agentfile.Validate(f); err != nil {
		return nil, fmt.Errorf("%w: %w", agent.ErrInvalid, err)
	}
	p := &importPlan{file: f, opts: opts}
	if err := p.plan(); err != nil {
		return nil, err
	}
	created, err := s.runImport(ctx, p)
	if err != nil {
		s.undoImport(ctx, created)
		return nil, err
	}
	return &ImportResult{AgentIDs: created.agents, Notes: p.notes.result()}, nil
}

// importPlan is an import worked out before anything is written.
type importPlan struct {
	file *agentfile.File
	opts ImportOptions
	// tools maps the file's tool IDs that agents use to what they become;
	// toolOrder lists those IDs in the file's order.
	tools     map[string]*toolPlan
	toolOrder []string
	// shared lists the file's block IDs that become standalone blocks.
	shared []string
	agents []*agentPlan
	notes  notes
}

// toolPlan is one tool of the file: a built-in tool (by name), a custom
// tool (spec) to create or reuse, or nothing (dropped).
type toolPlan struct {
	builtin string
	spec    *tools.Spec
	name    string
	// id is the custom tool's ID once created or found.
	id string
}

// agentPlan is one agent of the file.
type agentPlan struct {
	req agent.ImportRequest
	// tools are the file IDs of its custom tools; shared the file IDs of
	// its shared blocks.
	tools  []string
	shared []string
	// embeddingFromFile: the embedding handle is the file's, not the
	// caller's (a file's handle this server cannot serve is dropped).
	embeddingFromFile bool
	name              string
}

// notes collects the notes of an import, bounded.
type notes struct {
	list []string
	more int
}

func (n *notes) addf(format string, args ...any) {
	if len(n.list) == importNotesMax {
		n.more++
		return
	}
	n.list = append(n.list, fmt.Sprintf(format, args...))
}

// result returns the notes, the last saying how many did not fit.
func (n *notes) result() []string {
	if n.more == 0 {
		return n.list
	}
	return append(slices.Clone(n.list), fmt.Sprintf("and %d more notes", n.more))
}

func (p *importPlan) plan() error {
	f := p.file
	for _, l := range []struct {
		n         int
		what, why string
	}{
		{len(f.Groups), "groups", "Kelpie has no multi-agent groups"},
		{len(f.Sources), "sources", "Kelpie has no data sources"},
		{len(f.Files), "files", "Kelpie has no data sources"},
		{len(f.MCPServers), "MCP servers", "Kelpie does not import MCP server configurations"},
		{len(f.Skills), "skills", "Kelpie has no skills"},
	} {
		if l.n > 0 {
			p.notes.addf("the file's %d %s were not imported: %s", l.n, l.what, l.why)
		}
	}
	if p.opts.ProjectID != "" {
		p.notes.addf("project_id %q has no effect: Kelpie has no projects", p.opts.ProjectID)
	}
	if len(p.opts.Secrets) > 0 {
		names := slices.Sorted(slices.Values(p.opts.Secrets))
		p.notes.addf("the secrets given (%s) were not kept: Kelpie has no tool secrets", strings.Join(names, ", "))
	}
	p.planBlocks()
	if err := p.planTools(); err != nil {
		return err
	}
	for i := range f.Agents {
		ap, err := p.planAgent(&f.Agents[i])
		if err != nil {
			return fmt.Errorf("agent %q (%s): %w", f.Agents[i].Name, f.Agents[i].ID, err)
		}
		p.agents = append(p.agents, ap)
	}
	return nil
}

// planBlocks decides which of the file's blocks become standalone: those
// that several agents use.
func (p *importPlan) planBlocks() {
	users := map[string]int{}
	for _, a := range p.file.Agents {
		for _, id := range dedupe(a.BlockIDs) {
			users[id]++
		}
	}
	unused := 0
	for _, b := range p.file.Blocks {
		switch n := users[b.ID]; {
		case n == 0:
			unused++
		case n > 1:
			p.shared = append(p.shared, b.ID)
		}
	}
	if unused > 0 {
		p.notes.addf("%d of the file's blocks belong to no agent and were not imported", unused)
	}
}

// planTools decides what each tool the agents use becomes.
func (p *importPlan) planTools() error {
	p.tools = map[string]*toolPlan{}
	used := map[string]bool{}
	for _, a := range p.file.Agents {
		for _, id := range a.ToolIDs {
			used[id] = true
		}
		for _, n := range a.Tools {
			for _, t := range p.file.Tools {
				if t.FunctionName() == n {
					used[t.ID] = true
				}
			}
		}
	}
	unused := 0
	for i := range p.file.Tools {
		t := &p.file.Tools[i]
		if !used[t.ID] {
			unused++
			continue
		}
		tp, err := p.planTool(t)
		if err != nil {
			return fmt.Errorf("tool %q (%s): %w", t.FunctionName(), t.ID, err)
		}
		p.tools[t.ID] = tp
		p.toolOrder = append(p.toolOrder, t.ID)
	}
	if unused > 0 {
		p.notes.addf("%d of the file's tools belong to no agent and were not imported", unused)
	}
	return nil
}

func (p *importPlan) planTool(t *agentfile.Tool) (*toolPlan, error) {
	name := t.FunctionName()
	if tools.IsBuiltinName(name) {
		return &toolPlan{builtin: name, name: name}, nil
	}
	typ := t.Type()
	custom := typ == agentfile.ToolCustom || (t.SourceCode != nil && *t.SourceCode != "" &&
		!strings.HasPrefix(typ, "letta_") && !strings.HasPrefix(typ, "external_"))
	if !custom {
		why := "Kelpie has no such built-in tool"
		if typ == agentfile.ToolExternalMCP {
			why = "Kelpie does not import MCP tools; add the MCP server and attach its tools"
		} else if strings.HasPrefix(typ, "external_") {
			why = "Kelpie does not run " + strings.TrimPrefix(typ, "external_") + " tools"
		}
		p.notes.addf("tool %q (%s) was not imported: %s", name, typ, why)
		return &toolPlan{name: name}, nil
	}
	spec := tools.Spec{Name: t.Name, Tags: t.Tags, JSONSchema: t.JSONSchema, ArgsJSONSchema: t.ArgsJSONSchema,
		ReturnCharLimit: t.ReturnCharLimit, DefaultRequiresApproval: t.DefaultRequiresApproval, Metadata: t.Metadata}
	if t.Description != nil {
		spec.Description = *t.Description
	}
	if t.SourceCode != nil {
		spec.SourceCode = *t.SourceCode
	}
	if t.SourceType != nil {
		spec.SourceType = *t.SourceType
	}
	checked, err := tools.Check(spec)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"pip_requirements", "npm_requirements"} {
		if slices.Contains(t.Extra.NonEmpty(), k) {
			p.notes.addf("tool %q: its %s were not kept (Kelpie runs no custom tool code)", checked, k)
		}
	}
	return &toolPlan{spec: &spec, name: checked}, nil
}

func (p *importPlan) planAgent(a *agentfile.Agent) (*agentPlan, error) {
	name := a.Name
	switch {
	case p.opts.Name != "":
		name = p.opts.Name
	case p.opts.AppendCopySuffix:
		name += "_copy"
	}
	ap := &agentPlan{name: name}
	note := func(format string, args ...any) { p.notes.addf("agent %q: "+format, append([]any{name}, args...)...) }
	req := &ap.req.Agent
	*req = agent.CreateRequest{Name: name, AgentType: a.AgentType, Tags: a.Tags, Metadata: a.Metadata, Tools: []string{}}
	switch a.AgentType {
	case "", agent.TypeLettaV1, agent.TypeMemGPTV2, agent.TypeMemGPT, agent.TypeReact:
	default:
		note("agent type %s is imported as %s, which Kelpie has", a.AgentType, agent.TypeLettaV1)
		req.AgentType = agent.TypeLettaV1
	}
	if a.System != nil {
		req.System = *a.System
		ap.req.EmptySystem = req.System == ""
	}
	if a.Description != nil {
		req.Description = *a.Description
	}
	req.Model = a.ModelHandle()
	if p.opts.Model != "" {
		req.Model = p.opts.Model
	}
	req.Embedding, ap.embeddingFromFile = a.EmbeddingHandle(), true
	if p.opts.Embedding != "" {
		req.Embedding, ap.embeddingFromFile = p.opts.Embedding, false
	}
	if a.LLMConfig != nil {
		note("of llm_config only the model handle (%s) is kept", a.ModelHandle())
	}
	p.agentBlocks(a, ap, note)
	if err := p.agentTools(a, ap, note); err != nil {
		return nil, err
	}
	agentRules(a, ap, note)
	agentSettings(a, note)
	if p.opts.StripMessages {
		if len(a.Messages) > 0 {
			note("its %d messages were stripped, as asked", len(a.Messages))
		}
		return ap, nil
	}
	ap.req.Messages = importMessages(a, note)
	if n := len(ap.req.Messages); n > agent.ImportMessagesMax {
		return nil, fmt.Errorf("%w: %d messages, over Kelpie's import limit of %d; import it with strip_messages", agent.ErrInvalid, n, agent.ImportMessagesMax)
	}
	return ap, nil
}

// agentBlocks plans an agent's blocks: its own (given inline, or blocks of
// the file only it uses), then the shared ones it attaches.
func (p *importPlan) agentBlocks(a *agentfile.Agent, ap *agentPlan, note func(string, ...any)) {
	blocks := slices.Clone(a.MemoryBlocks)
	for _, id := range dedupe(a.BlockIDs) {
		if slices.Contains(p.shared, id) {
			ap.shared = append(ap.shared, id)
			continue
		}
		blocks = append(blocks, p.file.Blocks[slices.IndexFunc(p.file.Blocks, func(b agentfile.Block) bool { return b.ID == id })])
	}
	for _, b := range blocks {
		if len(b.Metadata) > 0 || len(b.Tags) > 0 || len(b.Extra.NonEmpty()) > 0 {
			note("block %q: its metadata, tags and template settings were not kept", b.Label)
		}
		bc := agent.BlockCreate{Label: b.Label, Value: b.Value, Limit: b.CharLimit(), ReadOnly: b.ReadOnly}
		if b.Description != nil {
			bc.Description = *b.Description
		}
		ap.req.Agent.Blocks = append(ap.req.Agent.Blocks, bc)
	}
}

// agentTools plans an agent's tools: built-in ones by name, custom ones by
// the file's IDs (see planTools), and the agent type's defaults if the
// file asks for the base tools.
func (p *importPlan) agentTools(a *agentfile.Agent, ap *agentPlan, note func(string, ...any)) error {
	req := &ap.req.Agent
	addBuiltin := func(n string) {
		if !slices.Contains(req.Tools, n) {
			req.Tools = append(req.Tools, n)
		}
	}
	ids := slices.Clone(a.ToolIDs)
	for _, n := range a.Tools {
		if tools.IsBuiltinName(n) {
			addBuiltin(n)
			continue
		}
		i := slices.IndexFunc(p.file.Tools, func(t agentfile.Tool) bool { return t.FunctionName() == n })
		if i < 0 {
			note("tool %q, named but not in the file, was not attached", n)
			continue
		}
		ids = append(ids, p.file.Tools[i].ID)
	}
	for _, id := range dedupe(ids) {
		switch tp := p.tools[id]; {
		case tp.builtin != "":
			addBuiltin(tp.builtin)
		case tp.spec != nil:
			ap.tools = append(ap.tools, id)
		}
	}
	if a.IncludeBaseTools == nil || *a.IncludeBaseTools {
		for _, n := range agent.DefaultTools(orDefault(req.AgentType, agent.TypeLettaV1)) {
			addBuiltin(n)
		}
	}
	if len(ap.tools) > agent.CustomToolsMax {
		return fmt.Errorf("%w: %d custom tools, over the limit of %d", agent.ErrInvalid, len(ap.tools), agent.CustomToolsMax)
	}
	return nil
}

// agentRules keeps the tool rules Kelpie has an equivalent for: those
// that require approval.
func agentRules(a *agentfile.Agent, ap *agentPlan, note func(string, ...any)) {
	var dropped []string
	for _, raw := range a.ToolRules {
		var rule struct {
			Type     string `json:"type"`
			ToolName string `json:"tool_name"`
		}
		if json.Unmarshal(raw, &rule) == nil && rule.Type == "requires_approval" && rule.ToolName != "" {
			if !slices.Contains(ap.req.ApprovalRequired, rule.ToolName) {
				ap.req.ApprovalRequired = append(ap.req.ApprovalRequired, rule.ToolName)
			}
			continue
		}
		dropped = append(dropped, orDefault(rule.Type, "unknown"))
	}
	if len(dropped) > 0 {
		note("%d tool rules (%s) were not kept: Kelpie has no tool rules but requires_approval", len(dropped), strings.Join(dedupe(dropped), ", "))
	}
}

// agentSettings notes the agent's settings that Kelpie has no equivalent
// for.
func agentSettings(a *agentfile.Agent, note func(string, ...any)) {
	if keys := mapKeys(a.Secrets, a.ToolExecEnvVars); len(keys) > 0 {
		note("secrets (%s) were not kept: Kelpie has no tool secrets", strings.Join(keys, ", "))
	}
	if a.MessageBufferAutoclear {
		note("message_buffer_autoclear was not kept: Kelpie keeps every message")
	}
	if n := len(a.SourceIDs) + len(a.FilesAgents); n > 0 {
		note("its %d attached sources and files were not imported", n)
	}
	if len(a.GroupIDs) > 0 {
		note("its membership of %d groups was not imported", len(a.GroupIDs))
	}
	if set := a.Extra.NonEmpty(); len(set) > 0 {
		note("settings Kelpie has no equivalent for were ignored: %s", strings.Join(set, ", "))
	}
}

// importMessages converts an agent's history to Kelpie's log, noting what
// does not carry over. The result satisfies agent.ImportRequest's rules:
// tool returns without their call, and calls without their return, are
// left out.
func importMessages(a *agentfile.Agent, note func(string, ...any)) []agent.Message {
	type logged struct {
		m    agent.Message
		from string // the file's message ID
	}
	var out []logged
	var approval, summary, parts, reasoning int
	for i, m := range a.Messages {
		if i == 0 && m.Role == agentfile.RoleSystem {
			note("its first message, Letta's compiled system prompt, was not imported: Kelpie compiles its own")
			continue
		}
		at, _ := agentfile.ParseTime(m.CreatedAt) // zero if unreadable: now
		base := agent.Message{Content: m.Content.Text(), CreatedAt: at}
		if m.OTID != nil {
			base.OTID = *m.OTID
		}
		for _, part := range m.Content {
			if part.Type != agentfile.PartText && part.Type != agentfile.PartReasoning {
				parts++
			}
		}
		switch m.Role {
		case agentfile.RoleUser, agentfile.RoleSystem:
			base.Role = m.Role
			out = append(out, logged{base, m.ID})
		case agentfile.RoleSummary:
			summary++
			base.Role = llm.RoleSystem
			out = append(out, logged{base, m.ID})
		case agentfile.RoleAssistant:
			base.Role = llm.RoleAssistant
			if r := m.Content.Reasoning(); base.Content == "" {
				base.Content = r
			} else if r != "" {
				reasoning++
			}
			for _, tc := range m.ToolCalls {
				base.ToolCalls = append(base.ToolCalls, agent.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
			}
			out = append(out, logged{base, m.ID})
		case agentfile.RoleTool, agentfile.RoleFunction:
			base.Role = llm.RoleTool
			if m.Name != nil {
				base.ToolName = *m.Name
			}
			rets := m.ToolReturns
			if len(rets) <= 1 {
				if m.ToolCallID != nil {
					base.ToolCallID = *m.ToolCallID
				}
				base.ToolStatus = agent.ToolSuccess
				if len(rets) == 1 {
					if base.ToolCallID == "" && rets[0].ToolCallID != nil {
						base.ToolCallID = *rets[0].ToolCallID
					}
					if rets[0].Status == agent.ToolError {
						base.ToolStatus = agent.ToolError
					}
					if base.Content == "" {
						base.Content = rets[0].Response()
					}
				}
				out = append(out, logged{base, m.ID})
				continue
			}
			for _, r := range rets { // parallel calls: one message per return
				one := base
				one.Content, one.ToolStatus = r.Response(), agent.ToolSuccess
				if r.ToolCallID != nil {
					one.ToolCallID = *r.ToolCallID
				}
				if r.Status == agent.ToolError {
					one.ToolStatus = agent.ToolError
				}
				out = append(out, logged{one, m.ID})
			}
		default: // approval
			approval++
		}
	}

	// Pair calls with returns as models require: the returns of an
	// assistant message's calls follow it, before any other message.
	// Returns without such a call are dropped, then calls without a
	// return, then assistant messages left empty.
	type openCall struct {
		msg  int // index in kept
		name string
	}
	open := map[string]openCall{}
	unansweredIn := map[int][]string{} // kept index -> call IDs to drop
	closeAll := func() {
		for id, c := range open {
			unansweredIn[c.msg] = append(unansweredIn[c.msg], id)
		}
		clear(open)
	}
	var orphans int
	kept := out[:0]
	for _, l := range out {
		if l.m.Role != llm.RoleTool {
			closeAll()
			for _, tc := range l.m.ToolCalls {
				open[tc.ID] = openCall{len(kept), tc.Name}
			}
			kept = append(kept, l)
			continue
		}
		c, ok := open[l.m.ToolCallID]
		if !ok {
			orphans++
			continue
		}
		delete(open, l.m.ToolCallID)
		if l.m.ToolName == "" {
			l.m.ToolName = c.name
		}
		kept = append(kept, l)
	}
	closeAll()
	var unanswered int
	final := kept[:0]
	for i, l := range kept {
		if ids := unansweredIn[i]; len(ids) > 0 {
			n := len(l.m.ToolCalls)
			l.m.ToolCalls = slices.DeleteFunc(l.m.ToolCalls, func(tc agent.ToolCall) bool { return slices.Contains(ids, tc.ID) })
			unanswered += n - len(l.m.ToolCalls)
			if len(l.m.ToolCalls) == 0 && l.m.Content == "" {
				continue
			}
		}
		final = append(final, l)
	}

	for _, c := range []struct {
		n    int
		what string
	}{
		{approval, "approval messages were not imported: Kelpie records approvals on the calls they answer"},
		{summary, "summary messages were imported as system messages"},
		{parts, "content parts other than text and reasoning (images, tool content) were not imported"},
		{reasoning, "messages kept their text but not the reasoning beside it"},
		{orphans, "tool returns without their call were not imported"},
		{unanswered, "tool calls without a return were not imported"},
	} {
		if c.n > 0 {
			note("%d %s", c.n, c.what)
		}
	}
	window := make(map[string]bool, len(a.InContextMessageIDs))
	for _, id := range a.InContextMessageIDs {
		window[id] = true
	}
	inContext := 0
	for _, l := range final {
		if window[l.from] {
			inContext++
		}
	}
	if inContext != len(final) {
		note("Letta's context window held %d of the %d messages imported; Kelpie's context window is the most recent messages of the log", inContext, len(final))
	}
	msgs := make([]agent.Message, len(final))
	for i, l := range final {
		msgs[i] = l.m
	}
	return msgs
}

// importDone is what runImport created, for undoImport.
type importDone struct {
	agents []string
	blocks []string
}

// runImport writes the plan: tools, shared blocks, then each agent with
// its history.
func (s *Service) runImport(ctx context.Context, p *importPlan) (*importDone, error) {
	done := &importDone{}
	for _, id := range p.toolOrder {
		tp := p.tools[id]
		if tp.spec == nil {
			continue
		}
		toolID, err := s.importTool(ctx, tp, p.opts.OverrideExistingTools)
		if err != nil {
			return done, fmt.Errorf("tool %q: %w", tp.name, err)
		}
		tp.id = toolID
	}
	blockIDs := map[string]string{} // file ID -> standalone block ID
	for _, id := range p.shared {
		i := slices.IndexFunc(p.file.Blocks, func(b agentfile.Block) bool { return b.ID == id })
		fb := p.file.Blocks[i]
		b := agent.Block{Label: fb.Label, Value: fb.Value, Limit: fb.CharLimit(), ReadOnly: fb.ReadOnly}
		if fb.Description != nil {
			b.Description = *fb.Description
		}
		sb, err := s.CreateBlock(ctx, b)
		if err != nil {
			return done, fmt.Errorf("shared block %q: %w", fb.Label, err)
		}
		done.blocks = append(done.blocks, sb.ID)
		blockIDs[id] = sb.ID
	}
	for _, ap := range p.agents {
		req := ap.req
		for _, id := range ap.tools {
			req.Agent.CustomToolIDs = append(req.Agent.CustomToolIDs, p.tools[id].id)
		}
		for _, id := range ap.shared {
			req.SharedBlockIDs = append(req.SharedBlockIDs, blockIDs[id])
		}
		// The file's embedding model may be one this server does not
		// serve: the agent then gets the default, as one created without.
		if err := s.checkAgentEmbedding(ctx, req.Agent.Embedding); err != nil {
			if !ap.embeddingFromFile {
				return done, err
			}
			p.notes.addf("agent %q: embedding model %s is not served here (%v); it got the server's default", ap.name, req.Agent.Embedding, err)
			req.Agent.Embedding = ""
		}
		if req.Agent.Embedding == "" {
			req.Agent.Embedding = s.defaultEmbedding
			if err := s.checkAgentEmbedding(ctx, req.Agent.Embedding); err != nil {
				return done, err
			}
		}
		id, err := s.importAgent(ctx, req)
		if err != nil {
			return done, fmt.Errorf("agent %q: %w", ap.name, err)
		}
		done.agents = append(done.agents, id)
	}
	return done, nil
}

// importTool creates a custom tool, or finds the one of the same name and
// reuses it — with the file's definition if override is set.
func (s *Service) importTool(ctx context.Context, tp *toolPlan, override bool) (string, error) {
	if override {
		t, _, err := s.tools.Upsert(ctx, *tp.spec)
		if err != nil {
			return "", err
		}
		return t.ID, nil
	}
	t, err := s.tools.GetByName(ctx, tp.name)
	if err == nil {
		return t.ID, nil
	}
	if !errors.Is(err, agent.ErrNotFound) {
		return "", err
	}
	t, err = s.tools.Create(ctx, *tp.spec)
	if errors.Is(err, agent.ErrAlreadyExists) {
		// Created meanwhile by someone else: reuse it.
		if t, err = s.tools.GetByName(ctx, tp.name); err == nil {
			return t.ID, nil
		}
	}
	if err != nil {
		return "", err
	}
	return t.ID, nil
}

// importAgent creates one agent with its history (agent.OpImport).
func (s *Service) importAgent(ctx context.Context, req agent.ImportRequest) (string, error) {
	req.Agent.ID = rt.NewID(s.ids, "agent")
	var out *agent.Agent
	// A create that attaches custom tools reads their records; a
	// concurrent edit of one makes it conflict, write nothing, and go
	// again.
	err := s.retryConflicts(ctx, func() (err error) {
		out, err = agent.OpImport.Invoke(ctx, s.sys, agent.ActorID(req.Agent.ID), req)
		return err
	})
	if err != nil {
		return "", err
	}
	s.noteEmbedding(out.ID, out.Embedding)
	return out.ID, nil
}

// undoImport removes the agents and standalone blocks a failed import
// created, as far as it can.
func (s *Service) undoImport(ctx context.Context, done *importDone) {
	if done == nil {
		return
	}
	ctx, cancel := rt.WithTimeout(s.rt, context.WithoutCancel(ctx), importCleanupTimeout)
	defer cancel()
	for _, id := range done.agents {
		s.DeleteAgent(ctx, id)
	}
	for _, id := range done.blocks {
		s.DeleteBlock(ctx, id)
	}
}

// ExportOptions are the choices of an export.
type ExportOptions struct {
	// ScrubMessages leaves the message history out.
	ScrubMessages bool
	// Skills are packaged with the agent as they are.
	Skills []agentfile.Skill
}

// ExportAgentFile returns the agent as an agent file (see the top of this
// file for what it holds). The agent, its blocks, tools, log and context
// window are read in one invocation, so they agree.
func (s *Service) ExportAgentFile(ctx context.Context, agentID string, opts ExportOptions) (*agentfile.File, error) {
	ex, err := call(ctx, s, agentID, agent.OpExport, agent.ExportRequest{Messages: !opts.ScrubMessages})
	if err != nil {
		return nil, err
	}
	ag := ex.Agent
	if ag == nil {
		return nil, fmt.Errorf("%w: agent %s", agent.ErrNotFound, agentID)
	}
	const fileAgentID = "agent-0"
	now := agentfile.FormatTime(s.rt.Now())
	f := &agentfile.File{
		Groups: []agentfile.Group{}, Files: []agentfile.FileRecord{}, Sources: []agentfile.Source{},
		MCPServers: []agentfile.MCPServer{}, Skills: opts.Skills, Metadata: map[string]any{}, CreatedAt: &now,
		Blocks: []agentfile.Block{}, Tools: []agentfile.Tool{},
	}
	fa := agentfile.Agent{
		ID: fileAgentID, Name: ag.Name, AgentType: ag.AgentType, System: &ag.System, Description: optionalString(ag.Description),
		Metadata: ag.Metadata, Tags: nonNil(ag.Tags), MemoryBlocks: []agentfile.Block{}, Tools: []string{},
		ToolIDs: []string{}, BlockIDs: []string{}, SourceIDs: []string{}, ToolRules: []json.RawMessage{},
		IncludeBaseTools: new(false), Model: optionalString(ag.Model), Embedding: optionalString(ag.Embedding),
		LLMConfig: exportLLMConfig(ag.Model), EmbeddingConfig: exportEmbeddingConfig(ag.Embedding, ag.EmbeddingDim),
		InContextMessageIDs: []string{}, Messages: []agentfile.Message{}, FilesAgents: []agentfile.FileAgent{}, GroupIDs: []string{},
	}
	for i, b := range ag.Blocks {
		id := fmt.Sprintf("block-%d", i)
		f.Blocks = append(f.Blocks, agentfile.Block{ID: id, Label: b.Label, Value: b.Value, Limit: new(b.Limit),
			Description: optionalString(b.Description), ReadOnly: b.ReadOnly, Metadata: map[string]any{}})
		fa.BlockIDs = append(fa.BlockIDs, id)
	}
	addTool := func(t agentfile.Tool) {
		t.ID = fmt.Sprintf("tool-%d", len(f.Tools))
		f.Tools = append(f.Tools, t)
		fa.ToolIDs = append(fa.ToolIDs, t.ID)
	}
	var builtins []string
	for _, n := range ag.Tools {
		if tools.IsBuiltinName(n) {
			builtins = append(builtins, n)
		}
	}
	for _, lt := range agent.ToolSchemas(builtins) {
		addTool(exportTool(tools.Builtin(lt)))
	}
	for _, ct := range ag.CustomTools {
		addTool(exportTool(tools.Custom(ct)))
	}
	for _, n := range ag.ApprovalRequired {
		rule, err := json.Marshal(map[string]string{"tool_name": n, "type": "requires_approval"})
		if err != nil {
			return nil, err
		}
		fa.ToolRules = append(fa.ToolRules, rule)
	}
	if !opts.ScrubMessages {
		// Letta's files begin with the compiled system prompt.
		sys := agentfile.Message{ID: "message-0", Type: "message", Role: agentfile.RoleSystem,
			Content: agentfile.Content{agentfile.TextPart(agent.CompileSystemPrompt(ag))},
			AgentID: new(fileAgentID), CreatedAt: agentfile.FormatTime(ag.CreatedAt)}
		fa.Messages = append(fa.Messages, sys)
		fa.InContextMessageIDs = append(fa.InContextMessageIDs, sys.ID)
		ids := map[string]string{}
		for _, m := range ex.Messages {
			fm := exportMessage(m, fmt.Sprintf("message-%d", len(fa.Messages)), fileAgentID)
			ids[m.ID] = fm.ID
			fa.Messages = append(fa.Messages, fm)
		}
		for _, id := range ex.InContext {
			if fid, ok := ids[id]; ok {
				fa.InContextMessageIDs = append(fa.InContextMessageIDs, fid)
			}
		}
	}
	f.Agents = []agentfile.Agent{fa}
	if err := agentfile.Validate(f); err != nil {
		return nil, fmt.Errorf("export of agent %s: %w", agentID, err)
	}
	return f, nil
}

// exportTool renders a tool of the registry as the file's.
func exportTool(t tools.Tool) agentfile.Tool {
	metadata := t.Metadata
	if metadata == nil {
		metadata = map[string]any{}
	}
	out := agentfile.Tool{ToolType: t.ToolType, Name: t.Name, Description: new(t.Description), SourceType: new(t.SourceType),
		Tags: nonNil(t.Tags), JSONSchema: t.JSONSchema, ArgsJSONSchema: t.ArgsJSONSchema, ReturnCharLimit: new(t.ReturnCharLimit),
		DefaultRequiresApproval: t.DefaultRequiresApproval, Metadata: metadata}
	if t.SourceCode != "" {
		out.SourceCode = new(t.SourceCode)
	}
	return out
}

// exportMessage renders a logged message as the file's.
func exportMessage(m agent.Message, id, agentID string) agentfile.Message {
	out := agentfile.Message{ID: id, Type: "message", Role: m.Role, AgentID: new(agentID),
		OTID: optionalString(m.OTID), CreatedAt: agentfile.FormatTime(m.CreatedAt)}
	if m.Content != "" || m.Role != llm.RoleAssistant {
		out.Content = agentfile.Content{agentfile.TextPart(m.Content)}
	}
	for _, tc := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, agentfile.ToolCall{ID: tc.ID, Type: "function",
			Function: agentfile.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}})
	}
	if m.Role == llm.RoleTool {
		status := orDefault(m.ToolStatus, agent.ToolSuccess)
		resp, _ := json.Marshal(m.Content)
		out.Name, out.ToolCallID = new(m.ToolName), new(m.ToolCallID)
		out.ToolReturns = []agentfile.ToolReturn{{ToolCallID: new(m.ToolCallID), Status: status, FuncResponse: resp}}
	}
	return out
}

// exportLLMConfig describes a model handle as Letta's llm_config.
func exportLLMConfig(handle string) *agentfile.LLMConfig {
	if handle == "" {
		return nil
	}
	provider, model := splitHandle(handle)
	endpoint := "openai"
	if slices.Contains(llmEndpointTypes, provider) {
		endpoint = provider
	}
	return &agentfile.LLMConfig{Model: model, ModelEndpointType: endpoint, ContextWindow: exportContextWindow, Handle: new(handle)}
}

// exportEmbeddingConfig describes an embedding handle as Letta's
// embedding_config.
func exportEmbeddingConfig(handle string, dim int) *agentfile.EmbeddingConfig {
	if handle == "" {
		return nil
	}
	provider, model := splitHandle(handle)
	endpoint := "openai"
	if slices.Contains(embeddingEndpointTypes, provider) {
		endpoint = provider
	}
	return &agentfile.EmbeddingConfig{EmbeddingEndpointType: endpoint, EmbeddingModel: model, EmbeddingDim: dim, Handle: new(handle)}
}

// The endpoint types Letta's configurations allow; a handle's provider
// outside them is reported as "openai" (an OpenAI-compatible endpoint).
var (
	llmEndpointTypes       = []string{"openai", "anthropic", "google_ai", "google_vertex", "azure", "groq", "ollama", "vllm", "llamacpp", "lmstudio", "mistral", "together", "bedrock", "deepseek", "xai", "openrouter"}
	embeddingEndpointTypes = []string{"openai", "anthropic", "bedrock", "google_ai", "google_vertex", "azure", "groq", "ollama", "vllm", "llamacpp", "lmstudio", "mistral", "together"}
)

// splitHandle splits "provider/model"; a bare model has no provider.
func splitHandle(handle string) (provider, model string) {
	if p, m, ok := strings.Cut(handle, "/"); ok {
		return p, m
	}
	return "", handle
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// orDefault returns s, or def if s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// dedupe returns s without repeats, in order.
func dedupe(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// mapKeys returns the keys of the maps, sorted, each once.
func mapKeys(ms ...map[string]string) []string {
	var out []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}
