// Package blockedit is the pure logic of the memory-editing tools an agent
// uses on its core memory blocks: memory_insert, memory_replace,
// memory_rethink, memory_finish_edits, core_memory_append,
// core_memory_replace, the omni tool memory (create, str_replace, insert,
// delete and rename over /memories/<label> paths) and memory_apply_patch
// (a unified diff for one block, or a multi-block patch that adds, updates,
// deletes and renames blocks), with the JSON schemas the model is offered
// for them.
//
// The tool names, parameter names, types and required lists are Letta
// 0.16.8's. Apply runs one call over the blocks as they are and returns the
// changes to store and the text the tool returns; it does no I/O and never
// changes its arguments. A call either succeeds whole or fails with nothing
// to store: a multi-block patch is all-or-nothing.
//
// # Behaviour
//
// Every tool looks its block up by exact label; an unknown label is an
// error that names the agent's labels (ErrNoBlock), and an edit, delete or
// rename of a read-only block is refused (ErrReadOnly). A value over the
// block's character limit (Unicode code points, like Letta) is refused and
// nothing changes (ErrLimit).
//
// memory_replace and memory str_replace need old_string to occur exactly
// once (ErrNotFound for none, ErrAmbiguous saying how many and on which
// lines). memory_insert and memory insert take insert_line from 0 (before
// the first line) to the block's line count, or -1 for the end. These
// tools (both forms), memory_rethink and memory_apply_patch refuse text that
// carries the line-number prefixes of a numbered memory view ("3→ " at the
// start of a line, or Letta's older "Line 3: ") or the banner Letta puts
// over such a view (ErrLineNumbers); core_memory_append,
// core_memory_replace and memory create do not check, as in Letta. Like
// Letta, memory_replace, memory_insert, their
// memory counterparts and memory_apply_patch expand tabs to spaces (tab
// stops every 8 columns) in the block and in the text before matching, so
// the stored value has its tabs expanded.
//
// The tools that edit one block return its new value, as Letta 0.16.8
// does; memory create, delete and rename and the multi-block patch return
// a short report; memory_finish_edits returns "".
//
// Older argument names still work: new_str for new_string and old_str for
// old_string (memory_insert, memory_replace, memory str_replace). When a
// call gives both names with different values it is an error (ErrArgument);
// the same value under both is accepted.
//
// # Where Kelpie differs from Letta 0.16.8
//
// These are deliberate; each fixes a Letta behaviour that loses or garbles
// an edit:
//   - Inserting into, appending to or patching an empty block gives the new
//     text alone, not the text after a stray newline.
//   - An empty old_string or old_content is refused (Letta would insert the
//     new text between every character, or report a false ambiguity).
//   - memory rename with both path+description and old_path+new_path does
//     both (Letta silently drops the rename); deleting, renaming or
//     redescribing a read-only block is refused; a missing block in
//     memory delete is an error, not a success message carrying an error.
//   - memory paths: "/memories/" then "/" are stripped, as in Letta. A new
//     label (create, rename target) is kept as written; an existing block
//     is found by the label as written or, failing that, with "/" replaced
//     by "_" (Letta applies that replacement in some commands only).
//   - memory insert without insert_line appends at the end (Letta fails).
//   - Line-number checks go a little further: "Line 3: " is refused on the
//     first line too, memory_replace's new_string is checked for the banner
//     as well as old_string, and a patch is checked behind each hunk line's
//     '+', '-' or ' ' (Letta checks only from the line's start, so
//     "+3→ text" passed).
//   - In a patch, tabs are expanded in each line's text after its '+', '-'
//     or ' ' (Letta expands the patch whole, so a tab after the prefix
//     counts from column 1 and no longer matches the block's tab).
//   - In a patch, "---" and "+++" lines are file headers only before a
//     section's first hunk line (Letta drops them anywhere, which loses the
//     removal of a line starting "--"); a hunk line that starts with none of
//     ' ', '-', '+' is an error rather than silently skipped; blank lines at
//     the end of a section are ignored; a CR before each LF is dropped.
//   - In a multi-block patch, an unknown "***" header, a body under
//     *** Delete Block, text after *** End Patch and a non-'+' line in an
//     *** Add Block body are errors; *** Move to renames the block of its
//     section after that section's edit (in Letta the rename runs first and
//     the section then fails), may appear once per Add or Update section,
//     and makes an Update section without hunks a pure rename.
//   - A multi-block patch applies all or nothing; Letta stores each section
//     as it goes. Its label argument may be left out (Letta requires it,
//     though it is unused there).
package blockedit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Block is a core memory block as the tools see it.
type Block struct {
	Label       string
	Value       string
	Description string
	// Limit bounds the value, in characters (Unicode code points).
	Limit    int
	ReadOnly bool
}

// ChangeKind says what a Change does.
type ChangeKind int

// The kinds of change.
const (
	// Set gives block Label the value Value.
	Set ChangeKind = iota + 1
	// Describe gives block Label the description Description.
	Describe
	// Create adds block Label with Value, Description and Limit.
	Create
	// Delete removes block Label.
	Delete
	// Rename renames block Label to NewLabel.
	Rename
)

var kindNames = [...]string{Set: "set", Describe: "describe", Create: "create", Delete: "delete", Rename: "rename"}

// String returns the kind's name: set, describe, create, delete or rename.
func (k ChangeKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one change to store. A call's changes apply in order, each to
// the blocks as the changes before it left them (see ApplyChanges): a
// Rename keeps the block (its value, limit, read-only flag and identity)
// under its new label, and later changes name it by that label.
type Change struct {
	Kind ChangeKind
	// Label names the block the change applies to (for Create, the new
	// block).
	Label string
	// NewLabel is the block's label after a Rename.
	NewLabel string
	// Value is the block's value after a Set or Create.
	Value string
	// Description is the block's description after a Describe or Create.
	Description string
	// Limit is a created block's character limit.
	Limit int
}

// Options bounds what the tools may do. A zero field takes its default.
type Options struct {
	// BlocksMax bounds the blocks an agent may hold; creating one more is
	// refused.
	BlocksMax int
	// LabelBytesMax bounds a new label.
	LabelBytesMax int
	// DescriptionBytesMax bounds a new description.
	DescriptionBytesMax int
	// DefaultLimitChars is the character limit of a block a tool creates.
	DefaultLimitChars int
	// ArgBytesMax bounds each string argument.
	ArgBytesMax int
}

// The defaults of Options.
const (
	DefaultBlocksMax           = 64
	DefaultLabelBytesMax       = 128
	DefaultDescriptionBytesMax = 4 << 10
	DefaultLimitChars          = 20000
	DefaultArgBytesMax         = 4 << 20
)

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.BlocksMax, DefaultBlocksMax)
	def(&o.LabelBytesMax, DefaultLabelBytesMax)
	def(&o.DescriptionBytesMax, DefaultDescriptionBytesMax)
	def(&o.DefaultLimitChars, DefaultLimitChars)
	def(&o.ArgBytesMax, DefaultArgBytesMax)
	return o
}

// Errors a call can fail with, for errors.Is. The error's text is the
// message for the model; it names the problem and what to do instead.
var (
	ErrUnknownTool = errors.New("blockedit: unknown tool")
	ErrArgument    = errors.New("blockedit: bad argument")
	ErrNoBlock     = errors.New("blockedit: no such block")
	ErrReadOnly    = errors.New("blockedit: read-only block")
	ErrLimit       = errors.New("blockedit: over a limit")
	ErrNotFound    = errors.New("blockedit: text not found")
	ErrAmbiguous   = errors.New("blockedit: text matches more than once")
	ErrLineNumbers = errors.New("blockedit: line-number prefix in text")
	ErrExists      = errors.New("blockedit: block exists")
	ErrPatch       = errors.New("blockedit: malformed patch")
)

// Error is a failed call: Kind is one of the Err values above, and the
// text is what the model is told.
type Error struct {
	// Kind is ErrNoBlock, ErrLimit, ….
	Kind error
	// Msg says what was wrong and what to do instead.
	Msg string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the kind, so that errors.Is(err, ErrNoBlock) works.
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, a ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, a...)}
}

// prefixError puts context before an Error's message, keeping its kind.
func prefixError(err error, format string, a ...any) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	return &Error{Kind: e.Kind, Msg: fmt.Sprintf(format, a...) + ": " + e.Msg}
}

// Bounds of what error messages quote.
const (
	quoteCharsMax = 200 // of one quoted text
	labelsListMax = 32  // labels an unknown-label error lists
	linesListMax  = 10  // line numbers an ambiguity error lists
)

// quote returns s quoted for a message, cut to quoteCharsMax characters.
func quote(s string) string {
	if utf8.RuneCountInString(s) <= quoteCharsMax {
		return fmt.Sprintf("%q", s)
	}
	r := []rune(s)
	return fmt.Sprintf("%q… (%d characters)", string(r[:quoteCharsMax]), len(r))
}

// Apply runs one call of tool with args over blocks, as they are now. It
// returns the changes to store, in order, and the text the tool returns to
// the model; on error (an *Error) there is nothing to store. Unknown
// arguments (such as request_heartbeat) are ignored. Apply does not modify
// blocks or args.
func Apply(tool string, args map[string]any, blocks []Block, opts Options) (changes []Change, result string, err error) {
	run, ok := tools[tool]
	if !ok {
		return nil, "", errorf(ErrUnknownTool, "%s is not a memory-editing tool", quote(tool))
	}
	e := &edit{blocks: slices.Clone(blocks), opts: opts.withDefaults()}
	result, err = run(e, argSet(args))
	if err != nil {
		return nil, "", err
	}
	return e.changes, result, nil
}

// Is reports whether name is one of the tools Apply runs.
func Is(name string) bool {
	_, ok := tools[name]
	return ok
}

// ApplyChanges returns blocks with changes applied in order, as a caller of
// Apply stores them: Set and Describe replace a field, Create appends a
// block, Delete removes one and Rename relabels one in place. It fails,
// changing nothing, when a change names a block that is not there or
// creates or renames onto a label that is. blocks is not modified.
func ApplyChanges(blocks []Block, changes []Change) ([]Block, error) {
	out := slices.Clone(blocks)
	for i, c := range changes {
		var err error
		if out, err = applyChange(out, c); err != nil {
			return nil, fmt.Errorf("change %d (%s %q): %w", i+1, c.Kind, c.Label, err)
		}
	}
	return out, nil
}

func indexOf(blocks []Block, label string) int {
	return slices.IndexFunc(blocks, func(b Block) bool { return b.Label == label })
}

// applyChange applies c to blocks, which it may modify.
func applyChange(blocks []Block, c Change) ([]Block, error) {
	i := indexOf(blocks, c.Label)
	switch c.Kind {
	case Create:
		if i >= 0 {
			return nil, ErrExists
		}
		return append(blocks, Block{Label: c.Label, Value: c.Value, Description: c.Description, Limit: c.Limit}), nil
	case Set, Describe, Delete, Rename:
		if i < 0 {
			return nil, ErrNoBlock
		}
	default:
		return nil, fmt.Errorf("unknown change kind %d", int(c.Kind))
	}
	switch c.Kind {
	case Set:
		blocks[i].Value = c.Value
	case Describe:
		blocks[i].Description = c.Description
	case Delete:
		blocks = slices.Delete(blocks, i, i+1)
	case Rename:
		if indexOf(blocks, c.NewLabel) >= 0 {
			return nil, ErrExists
		}
		blocks[i].Label = c.NewLabel
	}
	return blocks, nil
}

// edit is one call in progress: a working copy of the blocks and the
// changes made to it so far. A failed call drops it whole.
type edit struct {
	blocks  []Block
	changes []Change
	opts    Options
}

func (e *edit) record(c Change) {
	var err error
	if e.blocks, err = applyChange(e.blocks, c); err != nil {
		// The edit methods check everything applyChange does first.
		panic(fmt.Sprintf("blockedit: unchecked change %s %q: %v", c.Kind, c.Label, err))
	}
	e.changes = append(e.changes, c)
}

// block returns the block labelled label.
func (e *edit) block(label string) (*Block, error) {
	if i := indexOf(e.blocks, label); i >= 0 {
		return &e.blocks[i], nil
	}
	return nil, e.noBlock(label)
}

func (e *edit) noBlock(label string) error {
	if len(e.blocks) == 0 {
		return errorf(ErrNoBlock, "memory block %s does not exist; this agent has no memory blocks", quote(label))
	}
	labels := make([]string, 0, min(len(e.blocks), labelsListMax))
	for _, b := range e.blocks[:min(len(e.blocks), labelsListMax)] {
		labels = append(labels, quote(b.Label))
	}
	more := ""
	if len(e.blocks) > labelsListMax {
		more = fmt.Sprintf(" and %d more", len(e.blocks)-labelsListMax)
	}
	return errorf(ErrNoBlock, "memory block %s does not exist; the blocks are %s%s", quote(label), strings.Join(labels, ", "), more)
}

// writable returns the block labelled label, if it may be changed.
func (e *edit) writable(label string) (*Block, error) {
	b, err := e.block(label)
	if err != nil {
		return nil, err
	}
	if b.ReadOnly {
		return nil, errorf(ErrReadOnly, "memory block %s is read-only and cannot be changed", quote(label))
	}
	return b, nil
}

// set gives block label the value value, within its limit.
func (e *edit) set(label, value string) error {
	b, err := e.writable(label)
	if err != nil {
		return err
	}
	if n := utf8.RuneCountInString(value); n > b.Limit {
		return errorf(ErrLimit, "the edit would make memory block %s %d characters long, over its limit of %d; nothing was changed. Shorten the new text or remove other content from the block first", quote(label), n, b.Limit)
	}
	e.record(Change{Kind: Set, Label: label, Value: value})
	return nil
}

// describe gives block label the description desc.
func (e *edit) describe(label, desc string) error {
	if _, err := e.writable(label); err != nil {
		return err
	}
	if err := e.checkDescription(desc); err != nil {
		return err
	}
	e.record(Change{Kind: Describe, Label: label, Description: desc})
	return nil
}

// create adds a block.
func (e *edit) create(label, value, desc string) error {
	if err := e.checkNewLabel(label); err != nil {
		return err
	}
	if err := e.checkDescription(desc); err != nil {
		return err
	}
	if len(e.blocks) >= e.opts.BlocksMax {
		return errorf(ErrLimit, "cannot create memory block %s: the agent already has %d blocks, the most it may hold; delete or merge a block first", quote(label), len(e.blocks))
	}
	if n := utf8.RuneCountInString(value); n > e.opts.DefaultLimitChars {
		return errorf(ErrLimit, "the value of new memory block %s is %d characters, over the limit of %d for a new block; nothing was changed", quote(label), n, e.opts.DefaultLimitChars)
	}
	e.record(Change{Kind: Create, Label: label, Value: value, Description: desc, Limit: e.opts.DefaultLimitChars})
	return nil
}

// remove deletes a block.
func (e *edit) remove(label string) error {
	if _, err := e.writable(label); err != nil {
		return err
	}
	e.record(Change{Kind: Delete, Label: label})
	return nil
}

// rename relabels a block.
func (e *edit) rename(label, newLabel string) error {
	if _, err := e.writable(label); err != nil {
		return err
	}
	if label == newLabel {
		return errorf(ErrArgument, "memory block %s already has that label", quote(label))
	}
	if err := e.checkNewLabel(newLabel); err != nil {
		return err
	}
	e.record(Change{Kind: Rename, Label: label, NewLabel: newLabel})
	return nil
}

// checkNewLabel checks a label for a new or renamed block.
func (e *edit) checkNewLabel(label string) error {
	switch {
	case label == "":
		return errorf(ErrArgument, "the new block label is empty")
	case len(label) > e.opts.LabelBytesMax:
		return errorf(ErrLimit, "the label %s is %d bytes, over the limit of %d", quote(label), len(label), e.opts.LabelBytesMax)
	case strings.TrimSpace(label) != label:
		return errorf(ErrArgument, "the label %s starts or ends with white space; remove it", quote(label))
	case strings.ContainsFunc(label, unicode.IsControl):
		return errorf(ErrArgument, "the label %s contains a control character such as a newline; use letters, digits, '_' or '-'", quote(label))
	case indexOf(e.blocks, label) >= 0:
		return errorf(ErrExists, "memory block %s already exists; edit it, or choose another label", quote(label))
	}
	return nil
}

func (e *edit) checkDescription(desc string) error {
	if len(desc) > e.opts.DescriptionBytesMax {
		return errorf(ErrLimit, "the description is %d bytes, over the limit of %d", len(desc), e.opts.DescriptionBytesMax)
	}
	return nil
}
