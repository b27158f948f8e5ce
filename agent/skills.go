package agent

import (
	"fmt"
	"strings"
)

// ClientSkill is a skill the client's environment offers (Letta's
// ClientSkillSchema): the model may load it through the client's own
// tools. The server only lists it in the prompt.
type ClientSkill struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Location    string `json:"location,omitempty"`
}

// Bounds on a run's client skills.
const (
	clientSkillsMax      = 128
	clientSkillBytesMax  = 4 << 10
	clientSkillsBytesMax = 64 << 10
)

func checkSkills(skills []ClientSkill) error {
	if len(skills) > clientSkillsMax {
		return invalidf("%d client skills, over the limit of %d", len(skills), clientSkillsMax)
	}
	total := 0
	for _, s := range skills {
		if s.Name == "" {
			return invalidf("a client skill without a name")
		}
		for _, f := range []string{s.Name, s.Description, s.Location} {
			if err := checkText("client skill", f, clientSkillBytesMax); err != nil {
				return err
			}
			total += len(f)
		}
	}
	if total > clientSkillsBytesMax {
		return invalidf("client skills of %d bytes, over the limit of %d", total, clientSkillsBytesMax)
	}
	return nil
}

// skillsSection renders a run's client skills for the system prompt.
func skillsSection(skills []ClientSkill) string {
	var b strings.Builder
	b.WriteString("\n\n<available_skills>\nThe client's environment offers these skills; load one with the client's skill tool when a task calls for it.\n")
	for _, s := range skills {
		fmt.Fprintf(&b, "- %s", s.Name)
		if s.Location != "" {
			fmt.Fprintf(&b, " (%s)", s.Location)
		}
		if s.Description != "" {
			fmt.Fprintf(&b, ": %s", s.Description)
		}
		b.WriteString("\n")
	}
	b.WriteString("</available_skills>")
	return b.String()
}
