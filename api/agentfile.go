package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/kelpie-ai/kelpie/agentfile"
	"github.com/kelpie-ai/kelpie/service"
)

// Agent files (.af, package agentfile):
//
//	GET  /v1/agents/{agent_id}/export   ?scrub_messages&conversation_id -> AgentFileSchema (indented JSON)
//	POST /v1/agents/{agent_id}/export   ExportAgentRequest (skills, scrub_messages, conversation_id) -> AgentFileSchema
//	POST /v1/agents/import              multipart/form-data: file and options -> ImportedAgentsResponse
//
// Letta's OpenAPI document types the export's body as a string; Letta (and
// Kelpie) send the agent file itself, a JSON object, which the SDK hands
// back parsed. An import accepts a file whose JSON was encoded twice. It
// answers 400 for a file that is not JSON or not an agent file, 413 for
// one over agentfile.FileBytesMax, and 422 for one that breaks the format,
// a reference or a limit. Its answer lists, beside agent_ids, "notes" on
// what Kelpie did not keep (see service.ImportAgentFile); they are logged
// too.

// Limits of an import request.
const (
	// importFieldBytesMax bounds one form field other than the file.
	importFieldBytesMax = 64 << 10
	// importPartsMax bounds the parts of the form.
	importPartsMax = 64
	// importBodyBytesMax bounds the whole form: the file and the fields.
	importBodyBytesMax = agentfile.FileBytesMax + importPartsMax*importFieldBytesMax
)

// agentFileRoutes registers the agent file endpoints.
func (h *handler) agentFileRoutes() {
	h.route("GET /v1/agents/{agent_id}/export", h.exportAgent)
	h.route("POST /v1/agents/{agent_id}/export", h.exportAgentWithSkills)
	h.route("POST /v1/agents/import", h.importAgent)
}

// exportAgent answers GET /v1/agents/{agent_id}/export.
func (h *handler) exportAgent(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	legacy, ok := queryBool(w, r, "use_legacy_format", false)
	if !ok {
		return
	}
	if legacy {
		writeError(w, http.StatusBadRequest, "Legacy format is not supported: export without use_legacy_format")
		return
	}
	scrub, ok := queryBool(w, r, "scrub_messages", false)
	if !ok || !exportConversation(w, r.URL.Query().Get("conversation_id")) {
		return
	}
	h.writeExport(w, r, id, service.ExportOptions{ScrubMessages: scrub})
}

// exportAgentRequest is Letta's ExportAgentRequest.
type exportAgentRequest struct {
	Skills         []agentfile.Skill `json:"skills"`
	ConversationID *string           `json:"conversation_id"`
	ScrubMessages  bool              `json:"scrub_messages"`
}

// exportAgentWithSkills answers POST /v1/agents/{agent_id}/export.
func (h *handler) exportAgentWithSkills(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	var req exportAgentRequest
	if !decodeBody(w, r, &req) {
		return
	}
	for i, s := range req.Skills {
		if s.Name == "" {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("skills[%d]: a skill needs a name", i))
			return
		}
	}
	if req.ConversationID != nil && !exportConversation(w, *req.ConversationID) {
		return
	}
	h.writeExport(w, r, id, service.ExportOptions{ScrubMessages: req.ScrubMessages, Skills: req.Skills})
}

// exportConversation accepts the conversation an export names: Kelpie's
// agents have one, "default".
func exportConversation(w http.ResponseWriter, id string) bool {
	if id == "" || id == "default" {
		return true
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("conversation %q not found: Kelpie exports each agent's default conversation (omit conversation_id)", id))
	return false
}

func (h *handler) writeExport(w http.ResponseWriter, r *http.Request, id string, opts service.ExportOptions) {
	f, err := h.svc.ExportAgentFile(r.Context(), id, opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	body, err := agentfile.Marshal(f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// importedAgentsResponse is Letta's ImportedAgentsResponse, with Kelpie's
// notes on what the import left out.
type importedAgentsResponse struct {
	AgentIDs []string `json:"agent_ids"`
	Notes    []string `json:"notes"`
}

// importForm is the form of an import (Letta's Body_import_agent).
type importForm struct {
	file    []byte
	hasFile bool
	fields  map[string]string
}

// importAgent answers POST /v1/agents/import.
func (h *handler) importAgent(w http.ResponseWriter, r *http.Request) {
	form, ok := readImportForm(w, r)
	if !ok {
		return
	}
	opts, ok := importOptions(w, r, form.fields)
	if !ok {
		return
	}
	f, err := agentfile.Parse(form.file)
	if err != nil {
		writeAgentFileError(w, err)
		return
	}
	res, err := h.svc.ImportAgentFile(r.Context(), f, opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("api: agent file imported", "agents", res.AgentIDs, "notes", res.Notes)
	writeJSON(w, http.StatusOK, importedAgentsResponse{AgentIDs: res.AgentIDs, Notes: nonNilStrings(res.Notes)})
}

// writeAgentFileError answers a file Parse rejected.
func writeAgentFileError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, agentfile.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, agentfile.ErrSyntax):
		writeError(w, http.StatusBadRequest, "Corrupted agent file format: "+err.Error())
	case errors.Is(err, agentfile.ErrNotAgentFile):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	}
}

// readImportForm reads the multipart form of an import, bounded: the file
// by agentfile.FileBytesMax, each other field by importFieldBytesMax.
// Nothing goes to disk.
func readImportForm(w http.ResponseWriter, r *http.Request) (*importForm, bool) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" {
		writeError(w, http.StatusUnprocessableEntity, "expected a multipart/form-data body with the agent file in the field \"file\"")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, importBodyBytesMax)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "could not read the multipart form: "+err.Error())
		return nil, false
	}
	form := &importForm{fields: map[string]string{}}
	for parts := 0; ; parts++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			formReadError(w, err)
			return nil, false
		}
		if parts == importPartsMax {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("the form has more than %d parts", importPartsMax))
			return nil, false
		}
		name := part.FormName()
		limit := int64(importFieldBytesMax)
		if name == "file" {
			limit = agentfile.FileBytesMax
		}
		b, err := io.ReadAll(io.LimitReader(part, limit+1))
		if err != nil {
			formReadError(w, err)
			return nil, false
		}
		switch {
		case name == "file" && int64(len(b)) > limit:
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the agent file exceeds %d bytes", agentfile.FileBytesMax))
			return nil, false
		case int64(len(b)) > limit:
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("form field %q exceeds %d bytes", name, importFieldBytesMax))
			return nil, false
		case name == "file" && form.hasFile:
			writeError(w, http.StatusUnprocessableEntity, "the form has more than one \"file\"")
			return nil, false
		case name == "file":
			form.file, form.hasFile = b, true
		default:
			form.fields[name] = string(b)
		}
	}
	if !form.hasFile {
		writeError(w, http.StatusUnprocessableEntity, "the form has no \"file\": upload the agent file (.af) in the field \"file\"")
		return nil, false
	}
	return form, true
}

// formReadError answers a failure to read the form.
func formReadError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the import form exceeds %d bytes", importBodyBytesMax))
		return
	}
	writeError(w, http.StatusBadRequest, "could not read the multipart form: "+err.Error())
}

// importOptions reads the options of an import from its form fields (and
// the x-override-embedding-model header), with Letta's defaults and its
// precedence of the new fields over the deprecated ones. secrets (or
// env_vars_json) must be a JSON object.
func importOptions(w http.ResponseWriter, r *http.Request, fields map[string]string) (service.ImportOptions, bool) {
	opts := service.ImportOptions{}
	for _, b := range []struct {
		name string
		def  bool
		to   *bool
	}{
		{"override_existing_tools", true, &opts.OverrideExistingTools},
		{"strip_messages", false, &opts.StripMessages},
		{"append_copy_suffix", true, &opts.AppendCopySuffix},
	} {
		*b.to = b.def
		if s, ok := fields[b.name]; ok && strings.TrimSpace(s) != "" {
			v, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s must be true or false, not %q", b.name, s))
				return opts, false
			}
			*b.to = v
		}
	}
	first := func(vals ...string) string {
		for _, v := range vals {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
		return ""
	}
	opts.Name = first(fields["name"], fields["override_name"])
	opts.Model = first(fields["model"], fields["override_model_handle"])
	opts.Embedding = first(fields["embedding"], fields["override_embedding_handle"], r.Header.Get("x-override-embedding-model"))
	opts.ProjectID = first(fields["project_id"])
	if s := first(fields["secrets"], fields["env_vars_json"]); s != "" {
		var secrets map[string]any
		if err := json.Unmarshal([]byte(s), &secrets); err != nil || secrets == nil {
			writeError(w, http.StatusBadRequest, "secrets must be a valid JSON string (an object of names to values)")
			return opts, false
		}
		for k := range secrets {
			opts.Secrets = append(opts.Secrets, k)
		}
	}
	return opts, true
}
