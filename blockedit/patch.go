package blockedit

import (
	"fmt"
	"slices"
	"strings"
)

// The grammar of memory_apply_patch.
//
// A patch with none of the block headers below is a single-block patch: a
// unified diff applied to the block named by label. It is a list of hunks,
// separated by lines starting "@@" (whatever follows "@@" is ignored). A
// hunk line starts with ' ' (context: kept), '-' (removed) or '+' (added);
// an empty line is an empty context line. Before the first hunk line,
// "---" and "+++" file headers and any other preamble (such as
// "diff --git") are ignored, and so, anywhere, are "\ No newline" notes
// and lines starting "*** ". Each hunk's context and removed lines, in
// order, must occur exactly once in the block as it stands after the
// hunks before it; they are replaced by the hunk's context and added
// lines. A hunk of added lines only is appended at the end. Tabs are
// expanded (see expandTabs) in the block and in each line's text after its
// first character, so a tab matches the spaces it stands for.
//
// A patch with a block header is a multi-block patch, optionally opened by
// "*** Begin Patch" and closed by "*** End Patch":
//
//	*** Add Block: <label>       a new block; an optional next line
//	                             "Description: <text>", then its value as
//	                             '+' lines (blank lines are empty lines)
//	*** Update Block: <label>    hunks as in a single-block patch
//	*** Delete Block: <label>    no body
//	*** Move to: <label>         in an Add or Update section, once:
//	                             renames the section's block after its edit
//
// Sections apply in order to the blocks as the sections before left them;
// the patch applies whole or not at all. Blank lines at the end of a
// section are ignored. "*** End of File" is ignored; any other line
// starting "***" is an error.
const (
	headerAdd    = "*** Add Block:"
	headerUpdate = "*** Update Block:"
	headerDelete = "*** Delete Block:"
	headerMove   = "*** Move to:"
	markerBegin  = "*** Begin Patch"
	markerEnd    = "*** End Patch"
	markerEOF    = "*** End of File"
)

// Bounds of one patch.
const (
	patchSectionsMax = 256 // sections of a multi-block patch
	patchHunksMax    = 256 // hunks, over all sections
	hunkSampleLines  = 4   // expected lines a no-match error shows
)

// isMarker reports whether t is the marker m, give or take trailing white
// space.
func isMarker(t, m string) bool { return strings.TrimRight(t, " \t") == m }

// patchLine is one line of a patch and its 1-based line number.
type patchLine struct {
	no   int
	text string
}

// hunk is one hunk: old (context and removed lines) is replaced by new
// (context and added lines).
type hunk struct {
	no       int // line number of its first line
	old, new []string
}

type sectionKind int

const (
	addBlock sectionKind = iota + 1
	updateBlock
	deleteBlock
)

// section is one section of a multi-block patch.
type section struct {
	kind        sectionKind
	no          int    // line number of its header
	header      string // the header line
	label       string
	description string // addBlock
	moveTo      string // addBlock, updateBlock
	body        []patchLine
	content     string // addBlock: the new value
	hunks       []hunk // updateBlock
}

func memoryApplyPatch(e *edit, a argSet) (string, error) {
	// Letta requires label, but a multi-block patch does not use it, so
	// only a single-block patch needs it here.
	label, _, err := a.optString("label", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	patch, err := a.string("patch", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	if err := checkPatchLineNumbers(patch); err != nil {
		return "", err
	}
	lines := splitPatch(patch)
	if !isMultiBlock(lines) {
		if label == "" {
			return "", errorf(ErrArgument, "label is empty and the patch has no *** Add Block, *** Update Block or *** Delete Block header: name the block to patch in label, or use the multi-block form")
		}
		b, err := e.writable(label)
		if err != nil {
			return "", err
		}
		hunks, err := parseHunks(trimBlankTail(lines), false)
		if err != nil {
			return "", err
		}
		if len(hunks) == 0 {
			return "", errorf(ErrPatch, "the patch has no hunk: give lines starting with ' ' (context), '-' (remove) or '+' (add), or a multi-block patch with *** Add Block, *** Update Block or *** Delete Block headers")
		}
		value, err := applyHunks(b.Value, label, hunks)
		if err != nil {
			return "", err
		}
		return value, e.set(label, value)
	}
	sections, err := parseSections(lines)
	if err != nil {
		return "", prefixError(err, "the patch was not applied (no block changed)")
	}
	report := make([]string, 0, len(sections))
	for i := range sections {
		line, err := applySection(e, &sections[i])
		if err != nil {
			return "", prefixError(err, "the patch was not applied (no block changed): section at line %d, %s", sections[i].no, quote(sections[i].header))
		}
		report = append(report, "- "+line)
	}
	return "Applied the memory patch; your core memory now shows the result:\n" + strings.Join(report, "\n"), nil
}

// checkPatchLineNumbers refuses a patch carrying line-number prefixes,
// also behind a hunk line's first character.
func checkPatchLineNumbers(patch string) error {
	if strings.Contains(patch, lineNumberBanner) {
		return checkLineNumbers("the patch", patch)
	}
	for line := range strings.Lines(patch) {
		if err := checkLineNumbers("the patch", line); err != nil {
			return err
		}
		if line != "" && strings.ContainsRune("+- ", rune(line[0])) {
			if err := checkLineNumbers("the patch", line[1:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// splitPatch splits a patch into lines, dropping the newline that ends the
// last line and a CR before each LF.
func splitPatch(patch string) []patchLine {
	patch = strings.TrimSuffix(patch, "\n")
	texts := strings.Split(patch, "\n")
	lines := make([]patchLine, len(texts))
	for i, t := range texts {
		lines[i] = patchLine{no: i + 1, text: strings.TrimSuffix(t, "\r")}
	}
	return lines
}

func isMultiBlock(lines []patchLine) bool {
	return slices.ContainsFunc(lines, func(l patchLine) bool {
		_, _, ok := blockHeader(l.text)
		return ok || strings.HasPrefix(l.text, headerMove)
	})
}

// blockHeader parses an Add, Update or Delete header, returning its kind
// and what follows the colon.
func blockHeader(t string) (sectionKind, string, bool) {
	for _, h := range [...]struct {
		prefix string
		kind   sectionKind
	}{{headerAdd, addBlock}, {headerUpdate, updateBlock}, {headerDelete, deleteBlock}} {
		if rest, ok := strings.CutPrefix(t, h.prefix); ok {
			return h.kind, rest, true
		}
	}
	return 0, "", false
}

// trimBlankTail drops the empty lines that end lines.
func trimBlankTail(lines []patchLine) []patchLine {
	for len(lines) > 0 && lines[len(lines)-1].text == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// parseHunks parses the hunks of a single-block patch or of an Update
// section (multi).
func parseHunks(body []patchLine, multi bool) ([]hunk, error) {
	var (
		hunks   []hunk
		cur     *hunk
		started bool // a hunk line or "@@" has been seen
	)
	for _, l := range body {
		t := l.text
		switch {
		case isMarker(t, markerBegin) || isMarker(t, markerEnd) || isMarker(t, markerEOF), strings.HasPrefix(t, `\`):
			continue
		case strings.HasPrefix(t, "@@"):
			if cur != nil {
				hunks = append(hunks, *cur)
				cur = nil
			}
			started = true
			continue
		case !started && (t == "" || strings.HasPrefix(t, "---") || strings.HasPrefix(t, "+++")):
			continue
		case !multi && strings.HasPrefix(t, "*** "):
			continue // Letta ignores these in a single-block patch
		case t != "" && !strings.ContainsRune(" -+", rune(t[0])):
			if !started {
				continue // preamble, such as "diff --git" or "index"
			}
			return nil, errorf(ErrPatch, "line %d of the patch, %s, starts with none of ' ' (context), '-' (remove), '+' (add) or '@@' (new hunk); if it is unchanged text, start it with a space", l.no, quote(t))
		}
		started = true
		if cur == nil {
			if len(hunks) == patchHunksMax {
				return nil, errorf(ErrLimit, "the patch has more than %d hunks; split it into several calls", patchHunksMax)
			}
			cur = &hunk{no: l.no}
		}
		var text string
		if t != "" {
			text = expandTabs(t[1:])
		}
		switch {
		case t == "" || t[0] == ' ':
			cur.old, cur.new = append(cur.old, text), append(cur.new, text)
		case t[0] == '-':
			cur.old = append(cur.old, text)
		default: // '+'
			cur.new = append(cur.new, text)
		}
	}
	if cur != nil {
		hunks = append(hunks, *cur)
	}
	return hunks, nil
}

// parseSections parses a multi-block patch.
func parseSections(lines []patchLine) ([]section, error) {
	var secs []section
	ended := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		t := l.text
		switch {
		case ended:
			if strings.TrimSpace(t) != "" {
				return nil, errorf(ErrPatch, "line %d of the patch, %s, follows *** End Patch; end the patch there", l.no, quote(t))
			}
			continue
		case isMarker(t, markerBegin):
			continue
		case isMarker(t, markerEnd):
			ended = true
			continue
		}
		if kind, rest, ok := blockHeader(t); ok {
			label := strings.TrimSpace(rest)
			if label == "" {
				return nil, errorf(ErrPatch, "line %d of the patch, %s, names no block; write the label after the colon", l.no, quote(t))
			}
			if len(secs) == patchSectionsMax {
				return nil, errorf(ErrLimit, "the patch has more than %d sections; split it into several calls", patchSectionsMax)
			}
			s := section{kind: kind, no: l.no, header: t, label: label}
			if kind == addBlock && i+1 < len(lines) {
				if d, ok := strings.CutPrefix(lines[i+1].text, "Description:"); ok {
					s.description = expandTabs(strings.TrimSpace(d))
					i++
				}
			}
			secs = append(secs, s)
			continue
		}
		if rest, ok := strings.CutPrefix(t, headerMove); ok {
			target := strings.TrimSpace(rest)
			switch {
			case target == "":
				return nil, errorf(ErrPatch, "line %d of the patch, %s, names no new label", l.no, quote(t))
			case len(secs) == 0:
				return nil, errorf(ErrPatch, "line %d of the patch: *** Move to must follow an *** Add Block or *** Update Block header", l.no)
			case secs[len(secs)-1].kind == deleteBlock:
				return nil, errorf(ErrPatch, "line %d of the patch: *** Move to cannot follow *** Delete Block; a deleted block cannot be renamed", l.no)
			case secs[len(secs)-1].moveTo != "":
				return nil, errorf(ErrPatch, "line %d of the patch: a second *** Move to for block %s; give one new label", l.no, quote(secs[len(secs)-1].label))
			}
			secs[len(secs)-1].moveTo = target
			continue
		}
		if strings.HasPrefix(t, "***") && !isMarker(t, markerEOF) {
			return nil, errorf(ErrPatch, "line %d of the patch, %s, is not a patch header; the headers are %s, %s <label>, %s <label>, %s <label>, %s <label> and %s (spelt exactly so)", l.no, quote(t), markerBegin, headerAdd, headerUpdate, headerDelete, headerMove, markerEnd)
		}
		if len(secs) == 0 {
			if strings.TrimSpace(t) == "" || strings.HasPrefix(t, "@@") {
				continue
			}
			return nil, errorf(ErrPatch, "line %d of the patch, %s, comes before the first *** Add Block, *** Update Block or *** Delete Block header", l.no, quote(t))
		}
		secs[len(secs)-1].body = append(secs[len(secs)-1].body, l)
	}
	if len(secs) == 0 {
		return nil, errorf(ErrPatch, "the patch has no *** Add Block, *** Update Block or *** Delete Block section")
	}
	hunks := 0
	for i := range secs {
		s := &secs[i]
		body := trimBlankTail(s.body)
		var err error
		switch s.kind {
		case addBlock:
			s.content, err = addContent(body)
		case deleteBlock:
			for _, l := range body {
				if strings.TrimSpace(l.text) != "" && !isMarker(l.text, markerEOF) {
					err = errorf(ErrPatch, "line %d of the patch, %s: *** Delete Block takes no body", l.no, quote(l.text))
					break
				}
			}
		case updateBlock:
			if s.hunks, err = parseHunks(body, true); err == nil && len(s.hunks) == 0 && s.moveTo == "" {
				err = errorf(ErrPatch, "it has no hunk: give lines starting with ' ' (context), '-' (remove) or '+' (add)")
			}
			if hunks += len(s.hunks); err == nil && hunks > patchHunksMax {
				err = errorf(ErrLimit, "the patch has more than %d hunks; split it into several calls", patchHunksMax)
			}
		}
		if err != nil {
			return nil, prefixError(err, "section at line %d, %s", s.no, quote(s.header))
		}
	}
	return secs, nil
}

// addContent returns the value an Add section's body gives.
func addContent(body []patchLine) (string, error) {
	lines := make([]string, 0, len(body))
	for _, l := range body {
		switch t := l.text; {
		case strings.HasPrefix(t, "+"):
			lines = append(lines, expandTabs(t[1:]))
		case strings.TrimSpace(t) == "":
			lines = append(lines, "")
		case isMarker(t, markerEOF):
		default:
			return "", errorf(ErrPatch, "line %d of the patch, %s: every line of a new block's value starts with '+'", l.no, quote(t))
		}
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n"), nil
}

// applySection applies one section of a multi-block patch and returns a
// line of the report.
func applySection(e *edit, s *section) (string, error) {
	var report string
	switch s.kind {
	case addBlock:
		if err := e.create(s.label, s.content, s.description); err != nil {
			return "", err
		}
		report = "created block " + quote(s.label)
	case deleteBlock:
		if err := e.remove(s.label); err != nil {
			return "", err
		}
		report = "deleted block " + quote(s.label)
	case updateBlock:
		b, err := e.writable(s.label)
		if err != nil {
			return "", err
		}
		report = "renamed block " + quote(s.label)
		if len(s.hunks) > 0 {
			value, err := applyHunks(b.Value, s.label, s.hunks)
			if err != nil {
				return "", err
			}
			if err := e.set(s.label, value); err != nil {
				return "", err
			}
			report = "updated block " + quote(s.label)
		}
	}
	if s.moveTo != "" {
		if err := e.rename(s.label, s.moveTo); err != nil {
			return "", err
		}
		if report == "renamed block "+quote(s.label) {
			report += " to " + quote(s.moveTo)
		} else {
			report += " and renamed it to " + quote(s.moveTo)
		}
	}
	return report, nil
}

// applyHunks applies hunks in order to value, the value of block label,
// with its tabs expanded.
func applyHunks(value, label string, hunks []hunk) (string, error) {
	lines := strings.Split(expandTabs(value), "\n")
	// The patch's lines are numbered once, equal lines alike, and each
	// block line takes its number (or noLine), so that a hunk is matched
	// by comparing numbers, not strings.
	nums := lineNumbers{}
	for _, h := range hunks {
		nums.of(h.old)
		nums.of(h.new)
	}
	ids := make([]int32, len(lines))
	for i, l := range lines {
		if id, ok := nums[l]; ok {
			ids[i] = id
		} else {
			ids[i] = noLine
		}
	}
	for i, h := range hunks {
		if len(h.old) == 0 {
			if len(lines) == 1 && lines[0] == "" { // an empty block
				lines, ids = slices.Clone(h.new), nums.of(h.new)
			} else {
				lines, ids = append(lines, h.new...), append(ids, nums.of(h.new)...)
			}
			continue
		}
		starts, n := findLines(ids, nums.of(h.old))
		switch {
		case n == 0:
			return "", errorf(ErrNotFound, "hunk %d (line %d of the patch) does not match memory block %s: its context and removed lines were not found together and in this order (white space counts). Check them against the block, or give fewer context lines. The hunk expects:\n%s", i+1, h.no, quote(label), sampleLines(h.old))
		case n > 1:
			return "", errorf(ErrAmbiguous, "hunk %d (line %d of the patch) matches %d places in memory block %s (starting on lines %s); add context lines so that it matches one", i+1, h.no, n, quote(label), lineList(starts, n))
		}
		at, end := starts[0], starts[0]+len(h.old)
		lines = slices.Replace(lines, at, end, h.new...)
		ids = slices.Replace(ids, at, end, nums.of(h.new)...)
	}
	return strings.Join(lines, "\n"), nil
}

// lineNumbers numbers distinct lines.
type lineNumbers map[string]int32

// noLine is the number of a block line that no hunk mentions.
const noLine = -1

// of returns the numbers of lines, numbering new ones.
func (m lineNumbers) of(lines []string) []int32 {
	ids := make([]int32, len(lines))
	for i, l := range lines {
		id, ok := m[l]
		if !ok {
			id = int32(len(m))
			m[l] = id
		}
		ids[i] = id
	}
	return ids
}

func sampleLines(lines []string) string {
	var b strings.Builder
	for _, l := range lines[:min(len(lines), hunkSampleLines)] {
		fmt.Fprintf(&b, "  %s\n", quote(l))
	}
	if len(lines) > hunkSampleLines {
		fmt.Fprintf(&b, "  … (%d lines in all)\n", len(lines))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// lineList lists 0-based starts as 1-based line numbers, of n in all.
func lineList(starts []int, n int) string {
	s := make([]string, len(starts))
	for i, at := range starts {
		s[i] = fmt.Sprint(at + 1)
	}
	if n > len(starts) {
		s = append(s, "…")
	}
	return strings.Join(s, ", ")
}

// findLines finds needle as a run of consecutive lines in hay, both as
// line numbers (lineNumbers), counting overlapping matches. It returns
// where the first linesListMax matches start and how many there are, in
// time linear in the lines (Knuth-Morris-Pratt).
func findLines(hay, needle []int32) (starts []int, n int) {
	fail := make([]int, len(needle)) // fail[i]: longest proper border of needle[:i+1]
	for i, k := 1, 0; i < len(needle); i++ {
		for k > 0 && needle[i] != needle[k] {
			k = fail[k-1]
		}
		if needle[i] == needle[k] {
			k++
		}
		fail[i] = k
	}
	k := 0
	for i, id := range hay {
		for k > 0 && id != needle[k] {
			k = fail[k-1]
		}
		if id == needle[k] {
			k++
		}
		if k == len(needle) {
			if n < linesListMax {
				starts = append(starts, i-len(needle)+1)
			}
			n++
			k = fail[k-1]
		}
	}
	return starts, n
}
