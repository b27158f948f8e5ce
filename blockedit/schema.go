package blockedit

import "encoding/json"

// Tool describes a tool for the model: its name, what it does and its
// parameters as a JSON Schema object.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage
}

// Tools describes every tool Apply runs, in a fixed order. Names,
// parameter names, types and required lists are Letta 0.16.8's; the
// descriptions are Kelpie's. The result is the caller's to modify.
func Tools() []Tool {
	out := make([]Tool, len(toolSchemas))
	for i, t := range toolSchemas {
		out[i] = Tool{Name: t.name, Description: t.description, Parameters: json.RawMessage(t.params)}
	}
	return out
}

var toolSchemas = []struct{ name, description, params string }{
	{
		ToolMemoryInsert,
		"Insert text into a memory block as new lines after a given line. Line 0 puts the text at the top of the block; -1, the default, puts it at the end. Give the text alone, without the line numbers a memory view may show.",
		`{"type":"object","properties":{` +
			`"label":{"type":"string","description":"Label of the memory block to edit."},` +
			`"new_string":{"type":"string","description":"The text to insert; it may span several lines. No line-number prefixes."},` +
			`"insert_line":{"type":"integer","description":"The line after which the text goes: 0 for the top of the block, -1 (the default) for the end."}},` +
			`"required":["label","new_string"]}`,
	},
	{
		ToolMemoryReplace,
		"Replace one exact piece of text in a memory block with new text, for a precise edit. old_string must occur exactly once in the block, character for character, white space included; if it occurs more than once, include more of the text around it. To rewrite a whole block, use memory_rethink instead.",
		`{"type":"object","properties":{` +
			`"label":{"type":"string","description":"Label of the memory block to edit."},` +
			`"old_string":{"type":"string","description":"The exact text to replace; it must occur once in the block. No line-number prefixes."},` +
			`"new_string":{"type":"string","description":"The text to put in its place; an empty string deletes old_string. No line-number prefixes."}},` +
			`"required":["label","old_string","new_string"]}`,
	},
	{
		ToolMemoryRethink,
		"Replace the whole value of a memory block with a new version, to reorganise, merge or condense what it holds. For small edits, memory_replace and memory_insert are safer.",
		`{"type":"object","properties":{` +
			`"label":{"type":"string","description":"Label of the memory block to rewrite."},` +
			`"new_memory":{"type":"string","description":"The complete new value of the block, keeping whatever of the old value still holds."}},` +
			`"required":["label","new_memory"]}`,
	},
	{
		ToolMemoryFinishEdits,
		"Say that you have finished editing your memory blocks for now.",
		`{"type":"object","properties":{},"required":[]}`,
	},
	{
		ToolCoreMemoryAppend,
		"Add text to the end of a memory block, on a new line.",
		`{"type":"object","properties":{` +
			`"label":{"type":"string","description":"Label of the memory block to add to."},` +
			`"content":{"type":"string","description":"The text to add. Any Unicode text, emoji included, is fine."}},` +
			`"required":["label","content"]}`,
	},
	{
		ToolCoreMemoryReplace,
		"Replace every occurrence of an exact piece of text in a memory block. An empty new_content deletes the text.",
		`{"type":"object","properties":{` +
			`"label":{"type":"string","description":"Label of the memory block to edit."},` +
			`"old_content":{"type":"string","description":"The exact text to replace; it must occur in the block."},` +
			`"new_content":{"type":"string","description":"The replacement text; an empty string deletes old_content."}},` +
			`"required":["label","old_content","new_content"]}`,
	},
	{
		ToolMemory,
		"Manage your memory blocks as files at /memories/<label>. Commands: " +
			"create makes a new block at path with a description and, optionally, file_text as its value; " +
			"str_replace replaces old_string, which must occur exactly once, with new_string in the block at path; " +
			"insert adds insert_text as new lines after line insert_line (0 for the top, -1 or none for the end) of the block at path; " +
			"delete removes the block at path; " +
			"rename moves the block at old_path to new_path, and/or sets the description of the block at path. " +
			"Example: {\"command\":\"str_replace\",\"path\":\"/memories/human\",\"old_string\":\"likes tea\",\"new_string\":\"likes coffee\"}.",
		`{"type":"object","properties":{` +
			`"command":{"type":"string","enum":["create","str_replace","insert","delete","rename"],"description":"What to do: create, str_replace, insert, delete or rename."},` +
			`"path":{"type":"string","description":"The block, as /memories/<label> (create, str_replace, insert, delete; rename with description)."},` +
			`"file_text":{"type":"string","description":"create: the new block's value (empty if omitted)."},` +
			`"description":{"type":"string","description":"create: what the new block is for (required); rename: the new description of the block at path."},` +
			`"old_string":{"type":"string","description":"str_replace: the exact text to replace; it must occur once in the block."},` +
			`"new_string":{"type":"string","description":"str_replace: the text to put in its place; empty deletes old_string."},` +
			`"insert_line":{"type":"integer","description":"insert: the line after which the text goes; 0 for the top, -1 (the default) for the end."},` +
			`"insert_text":{"type":"string","description":"insert: the text to insert."},` +
			`"old_path":{"type":"string","description":"rename: the block's current path."},` +
			`"new_path":{"type":"string","description":"rename: the block's new path."}},` +
			`"required":["command"]}`,
	},
	{
		ToolMemoryApplyPatch,
		"Edit memory blocks with a patch. " +
			"Single-block form: a unified diff applied to the block named by label. Hunks are separated by lines starting with @@; " +
			"each hunk line starts with a space (unchanged context), - (remove) or + (add). " +
			"A hunk's context and removed lines, in order, must occur exactly once in the block; a hunk of + lines only is added at the end. " +
			"Multi-block form (label \"\"): a patch from *** Begin Patch to *** End Patch made of sections: " +
			"*** Add Block: <label>, then optionally Description: <text>, then the value as + lines; " +
			"*** Update Block: <label>, then hunks as above; " +
			"*** Delete Block: <label>; " +
			"and, right after an Add or Update header, *** Move to: <new label> to rename that block. " +
			"The whole patch applies or none of it does. Never include line-number prefixes.",
		`{"type":"object","properties":{` +
			`"label":{"type":"string","description":"The block a single-block patch applies to; an empty string for a multi-block patch."},` +
			`"patch":{"type":"string","description":"The patch: a unified diff for one block, or sections under *** Add Block, *** Update Block and *** Delete Block headers."}},` +
			`"required":["label","patch"]}`,
	},
}
