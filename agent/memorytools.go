package agent

import (
	"context"
	"fmt"
	"slices"

	"github.com/kelpie-ai/kelpie/blockedit"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/tooldef"
)

// The memory tools (Letta's final set: memory_insert, memory_replace,
// memory_rethink, memory_finish_edits, core_memory_append,
// core_memory_replace, memory, memory_apply_patch). Package blockedit
// decides what a call does to the blocks as the step sees them — the
// agent's blocks with shared ones resolved and the conversation's
// isolated copies in place of theirs — and returns the changes;
// applyBlockChanges stores them: a private block in the agent's state, a
// shared block in its record (read and written in the step's
// transaction, so a concurrent edit conflicts and the step is applied
// again), an isolated block in its conversation's record.

// More built-in tool names.
const (
	ToolMemory            = tooldef.Memory
	ToolMemoryApplyPatch  = tooldef.MemoryApplyPatch
	ToolMemoryFinishEdits = tooldef.MemoryFinishEdits
)

func init() {
	for _, tl := range blockedit.Tools() {
		b := builtins[tl.Name]
		b.run = runMemoryTool(tl.Name)
		builtins[tl.Name] = b
	}
}

// blockeditOptions are the agent's limits as blockedit applies them.
var blockeditOptions = blockedit.Options{BlocksMax: BlocksMax, LabelBytesMax: BlockLabelBytesMax,
	DefaultLimitChars: DefaultBlockLimitChars, ArgBytesMax: 4 * BlockLimitCharsMax}

func runMemoryTool(name string) func(t *turn, ctx context.Context, args map[string]any) (string, error) {
	return func(t *turn, ctx context.Context, args map[string]any) (string, error) {
		v, _, err := ResolveBlocks(ctx, t.c.GetShared, t.ag)
		if err != nil {
			return "", &fatalError{err}
		}
		v = t.th.blocks(v)
		view := make([]blockedit.Block, len(v.Blocks))
		for i, b := range v.Blocks {
			view[i] = blockedit.Block{Label: b.Label, Value: b.Value, Description: b.Description, Limit: b.Limit, ReadOnly: b.ReadOnly}
		}
		delete(args, heartbeatParam) // memgpt_agent's, not the tool's
		changes, result, err := blockedit.Apply(name, args, view, blockeditOptions)
		if err != nil {
			return "", err
		}
		if err := t.applyBlockChanges(ctx, changes); err != nil {
			return "", err
		}
		return result, nil
	}
}

// applyBlockChanges stores a memory tool's changes, in order.
func (t *turn) applyBlockChanges(ctx context.Context, changes []blockedit.Change) error {
	for _, ch := range changes {
		if ch.Kind == blockedit.Create {
			if err := t.createBlock(ch); err != nil {
				return err
			}
			continue
		}
		b, err := t.writableBlock(ctx, map[string]any{"label": ch.Label})
		if err != nil {
			return err
		}
		switch ch.Kind {
		case blockedit.Set:
			err = t.setBlock(ctx, b, ch.Value)
		case blockedit.Describe:
			err = t.editBlock(ctx, b, func(rec *Block) { rec.Description = ch.Description })
		case blockedit.Rename:
			if t.th.isolated(ch.Label) != nil {
				return fmt.Errorf("memory block %q is this conversation's own copy of the agent's block and cannot be renamed", ch.Label)
			}
			if t.ag.Block(ch.NewLabel) != nil {
				return fmt.Errorf("a memory block labelled %q exists already", ch.NewLabel)
			}
			err = t.editBlock(ctx, b, func(rec *Block) { rec.Label = ch.NewLabel })
			if ref := t.ag.blockByID(b.ID); err == nil && ref != nil {
				ref.Label = ch.NewLabel
			}
		case blockedit.Delete:
			err = t.deleteBlock(b)
		default:
			return fmt.Errorf("unknown memory change %v", ch.Kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// createBlock adds a private block to the agent, shared by all its
// conversations.
func (t *turn) createBlock(ch blockedit.Change) error {
	if t.ag.Block(ch.Label) != nil || t.th.isolated(ch.Label) != nil {
		return fmt.Errorf("a memory block labelled %q exists already", ch.Label)
	}
	if len(t.ag.Blocks) >= BlocksMax {
		return fmt.Errorf("the agent has %d memory blocks, the limit", len(t.ag.Blocks))
	}
	b := Block{ID: rt.NewID(t.ids, "block"), Label: ch.Label, Value: ch.Value, Description: ch.Description, Limit: ch.Limit}
	if err := CheckBlock(&b); err != nil {
		return err
	}
	t.ag.Blocks = append(t.ag.Blocks, b)
	t.ag.UpdatedAt = t.c.Now().UTC()
	return nil
}

// editBlock changes a block's fields other than its value, where the
// block lives (see setBlock).
func (t *turn) editBlock(ctx context.Context, b *Block, edit func(*Block)) error {
	if b.Shared {
		rec, err := LoadSharedBlock(ctx, t.c.GetShared, b.ID)
		if err != nil {
			return &fatalError{err}
		}
		edit(&rec.Block)
		if err := saveSharedBlock(t.c, rec); err != nil {
			return &fatalError{err}
		}
	} else {
		edit(b)
	}
	t.ag.UpdatedAt = t.c.Now().UTC()
	return nil
}

// deleteBlock removes a block from the agent: a private block goes, a
// shared one is detached (its record stays for the other agents), and a
// conversation's isolated copy goes from the conversation.
func (t *turn) deleteBlock(b *Block) error {
	if own := t.th.isolated(b.Label); own != nil {
		t.th.conv.IsolatedBlocks = slices.DeleteFunc(t.th.conv.IsolatedBlocks, func(x Block) bool { return x.ID == own.ID })
		return nil
	}
	t.ag.Blocks = slices.DeleteFunc(t.ag.Blocks, func(x Block) bool { return x.ID == b.ID })
	t.ag.UpdatedAt = t.c.Now().UTC()
	return nil
}
