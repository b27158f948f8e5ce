package agentfile

import (
	"fmt"
	"slices"
	"strings"
)

// roles are the message roles a file may use.
var roles = []string{RoleSystem, RoleUser, RoleAssistant, RoleTool, RoleFunction, RoleApproval, RoleSummary}

// Validate checks f against the format's rules and Parse's limits: at
// least one agent; every list within its bound; every entity with an ID,
// unique across the file (message IDs too); every reference — an agent's
// tools, blocks, sources, groups, files and in-context messages, a group's
// agents and blocks, a file's source — to an entity of the file; blocks
// labelled with a limit that is not negative; messages with a known role.
// The error wraps ErrInvalid and lists the first problems found.
func Validate(f *File) error {
	v := &validator{ids: map[string]string{}}
	switch {
	case len(f.Agents) == 0:
		v.addf("the file has no agents")
	case len(f.Agents) > AgentsMax:
		v.addf("%d agents, over the limit of %d", len(f.Agents), AgentsMax)
	}
	for _, l := range []struct {
		name string
		n    int
	}{
		{"groups", len(f.Groups)}, {"blocks", len(f.Blocks)}, {"files", len(f.Files)}, {"sources", len(f.Sources)},
		{"tools", len(f.Tools)}, {"mcp_servers", len(f.MCPServers)}, {"skills", len(f.Skills)},
	} {
		if l.n > EntitiesMax {
			v.addf("%d %s, over the limit of %d", l.n, l.name, EntitiesMax)
		}
	}
	if len(v.problems) > 0 {
		return v.err()
	}

	for i, b := range f.Blocks {
		v.id(fmt.Sprintf("blocks[%d]", i), b.ID)
		v.block(fmt.Sprintf("blocks[%d]", i), &b)
	}
	for i, t := range f.Tools {
		v.id(fmt.Sprintf("tools[%d]", i), t.ID)
	}
	for i, s := range f.Sources {
		v.id(fmt.Sprintf("sources[%d]", i), s.ID)
	}
	for i, m := range f.MCPServers {
		v.id(fmt.Sprintf("mcp_servers[%d]", i), m.ID)
	}
	for i, g := range f.Groups {
		v.id(fmt.Sprintf("groups[%d]", i), g.ID)
	}
	for i, fr := range f.Files {
		v.id(fmt.Sprintf("files[%d]", i), fr.ID)
	}
	for i, a := range f.Agents {
		v.id(fmt.Sprintf("agents[%d]", i), a.ID)
	}
	for i, s := range f.Skills {
		if s.Name == "" {
			v.addf("skills[%d] has no name", i)
		}
	}

	for i, fr := range f.Files {
		v.ref(fmt.Sprintf("files[%d].source_id", i), fr.SourceID, "sources")
	}
	for i, g := range f.Groups {
		for _, id := range g.AgentIDs {
			v.ref(fmt.Sprintf("groups[%d].agent_ids", i), id, "agents")
		}
		for _, id := range g.SharedBlockIDs {
			v.ref(fmt.Sprintf("groups[%d].shared_block_ids", i), id, "blocks")
		}
	}
	for i := range f.Agents {
		v.agent(fmt.Sprintf("agents[%d]", i), &f.Agents[i])
	}
	return v.err()
}

// validator collects the problems of a file.
type validator struct {
	// ids maps every entity ID seen to the list it is in.
	ids      map[string]string
	problems []string
	more     int
}

func (v *validator) addf(format string, args ...any) {
	if len(v.problems) == problemsMax {
		v.more++
		return
	}
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	msg := strings.Join(v.problems, "; ")
	if v.more > 0 {
		msg += fmt.Sprintf("; and %d more problems", v.more)
	}
	return fmt.Errorf("%w: %s", ErrInvalid, msg)
}

// id records an entity's ID, which must be new to the file.
func (v *validator) id(where, id string) {
	list, _, _ := strings.Cut(where, "[")
	if id == "" {
		v.addf("%s has no id", where)
		return
	}
	if prev, ok := v.ids[id]; ok {
		v.addf("%s: id %q is used twice (also in %s)", where, id, prev)
		return
	}
	v.ids[id] = list
}

// ref checks that id names an entity of the given list.
func (v *validator) ref(where, id, list string) {
	if got, ok := v.ids[id]; !ok || got != list {
		v.addf("%s: %q names no entity of the file's %s", where, id, list)
	}
}

func (v *validator) block(where string, b *Block) {
	if b.Label == "" {
		v.addf("%s has no label", where)
	}
	if b.Limit != nil && *b.Limit < 0 {
		v.addf("%s (%q): limit %d is negative", where, b.Label, *b.Limit)
	}
}

func (v *validator) agent(where string, a *Agent) {
	for _, id := range a.ToolIDs {
		v.ref(where+".tool_ids", id, "tools")
	}
	for _, id := range a.BlockIDs {
		v.ref(where+".block_ids", id, "blocks")
	}
	for _, id := range a.SourceIDs {
		v.ref(where+".source_ids", id, "sources")
	}
	for _, id := range a.GroupIDs {
		v.ref(where+".group_ids", id, "groups")
	}
	for i, b := range a.MemoryBlocks {
		v.block(fmt.Sprintf("%s.memory_blocks[%d]", where, i), &b)
	}
	for i, fa := range a.FilesAgents {
		w := fmt.Sprintf("%s.files_agents[%d]", where, i)
		v.ref(w+".file_id", fa.FileID, "files")
		v.ref(w+".source_id", fa.SourceID, "sources")
		if fa.AgentID != a.ID {
			v.addf("%s: agent_id %q is not the agent's (%q)", w, fa.AgentID, a.ID)
		}
	}
	if len(a.Messages) > MessagesPerAgentMax {
		v.addf("%s has %d messages, over the limit of %d", where, len(a.Messages), MessagesPerAgentMax)
		return
	}
	mine := make(map[string]bool, len(a.Messages))
	for i, m := range a.Messages {
		w := fmt.Sprintf("%s.messages[%d]", where, i)
		v.id(w, m.ID)
		mine[m.ID] = true
		if !slices.Contains(roles, m.Role) {
			v.addf("%s: role %q is not one of %s", w, m.Role, strings.Join(roles, ", "))
		}
		for j, tc := range m.ToolCalls {
			if tc.ID == "" || tc.Function.Name == "" {
				v.addf("%s.tool_calls[%d] has no id or no function name", w, j)
			}
		}
	}
	for _, id := range a.InContextMessageIDs {
		if !mine[id] {
			v.addf("%s.in_context_message_ids: %q names none of the agent's messages", where, id)
		}
	}
}
