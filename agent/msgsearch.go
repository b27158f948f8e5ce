package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Message search (Letta's POST /v1/messages/search and POST
// /v1/agents/messages/search): the messages of one agent's logs, or of
// many agents', read from committed storage through a transaction the
// caller rolls back, without activating any agent. The reads are not a
// snapshot: a message logged meanwhile may or may not be seen.
//
// Ranking is by text alone: Kelpie keeps no embeddings of messages, so
// every search mode a client asks for ranks the same way. A message's
// score is the number of distinct query terms (Tokenize: lowercased
// words, stopwords dropped, plurals stemmed) its text contains; messages
// containing none are not results. Equal scores go newest first. A query
// without searchable terms (empty, or only stopwords) lists the newest
// messages that pass the filters.
//
// The search is bounded, newest first at every level: at most
// MessageSearchAgentsMax agents (the most recently created) when no agent
// is named; per agent its default conversation and its
// MessageSearchConversationsMax most recently created other
// conversations; per conversation the newest MessageSearchLogMax log
// entries; and MessageSearchExaminedMax entries in all. When a bound
// leaves something unread the response says so (Partial).

// Message search limits.
const (
	// DefaultMessageSearchLimit is the number of results when the request
	// does not say (Letta's default).
	DefaultMessageSearchLimit = 50
	// MessageSearchLimitMax bounds the results of one search (Letta's
	// maximum).
	MessageSearchLimitMax = 100
	// MessageSearchAgentsMax bounds the agents a search across agents
	// reads.
	MessageSearchAgentsMax = 1000
	// MessageSearchConversationsMax bounds the conversations besides the
	// default one that a search reads per agent.
	MessageSearchConversationsMax = 100
	// MessageSearchLogMax bounds the entries a search reads from one
	// conversation's log.
	MessageSearchLogMax = 5000
	// MessageSearchExaminedMax bounds the log entries one search reads.
	MessageSearchExaminedMax = 200_000
	// messageSearchPage is the entries read per storage scan, bounding the
	// memory a scan holds.
	messageSearchPage = 500
	// messageSearchRolesMax bounds the roles a request filters by.
	messageSearchRolesMax = 16
)

// MessageRoles are the roles a search may filter by (Letta's
// MessageRole). Kelpie logs user, assistant, system and tool messages;
// the other roles match nothing.
var MessageRoles = []string{llm.RoleAssistant, llm.RoleUser, llm.RoleTool, "function", llm.RoleSystem, "approval", "summary"}

// MessageSearchRequest is a message search.
type MessageSearchRequest struct {
	// Query is the text to search for.
	Query string `json:"query"`
	// AgentID, if set, searches that agent's logs only; otherwise every
	// agent's (within MessageSearchAgentsMax).
	AgentID string `json:"agent_id,omitempty"`
	// ConversationID, with AgentID, searches one conversation:
	// ConversationDefault for the agent's default one, or another's ID.
	// "" searches all of the agent's conversations.
	ConversationID string `json:"conversation_id,omitempty"`
	// Roles, if any, keep messages with one of these roles (MessageRoles).
	Roles []string `json:"roles,omitempty"`
	// After keeps messages created strictly after it, Until those created
	// at or before it.
	After *time.Time `json:"after,omitempty"`
	Until *time.Time `json:"until,omitempty"`
	// Limit bounds the results, 1..MessageSearchLimitMax (0:
	// DefaultMessageSearchLimit).
	Limit int `json:"limit,omitempty"`
	// TextOnly searches what a person wrote or read — user and system
	// messages, the assistant's text and the message of its send_message
	// calls — and not other tool calls or tool returns, which are then
	// never results.
	TextOnly bool `json:"text_only,omitempty"`
}

// MessageSearchResult is one message found, best first.
type MessageSearchResult struct {
	Message Message `json:"message"`
	// AgentID is the agent whose log holds the message.
	AgentID string `json:"agent_id"`
	// Text is the message's searchable text (MessageSearchText).
	Text string `json:"text"`
	// Matches is the number of distinct query terms the text contains;
	// 0 for a query without searchable terms.
	Matches int `json:"matches"`
}

// MessageSearchResponse is the result of a message search.
type MessageSearchResponse struct {
	Results []MessageSearchResult `json:"results"`
	// Ranked says the query had searchable terms: results are ranked by
	// Matches (otherwise they are the newest messages).
	Ranked bool `json:"ranked"`
	// Partial says a bound left messages unread, so better matches may
	// exist.
	Partial bool `json:"partial,omitempty"`
}

// checkMessageSearch validates req and fills in defaults.
func checkMessageSearch(req *MessageSearchRequest) error {
	if err := checkText("query", req.Query, SearchQueryBytesMax); err != nil {
		return err
	}
	if req.Limit == 0 {
		req.Limit = DefaultMessageSearchLimit
	}
	if req.Limit < 0 || req.Limit > MessageSearchLimitMax {
		return invalidf("limit %d outside 1..%d", req.Limit, MessageSearchLimitMax)
	}
	if len(req.Roles) > messageSearchRolesMax {
		return invalidf("%d roles, over the limit of %d", len(req.Roles), messageSearchRolesMax)
	}
	for _, r := range req.Roles {
		if !slices.Contains(MessageRoles, r) {
			return invalidf("role %q is not one of %s", r, strings.Join(MessageRoles, ", "))
		}
	}
	if req.ConversationID != "" && req.AgentID == "" {
		return invalidf("a conversation_id needs the agent_id of its agent")
	}
	return nil
}

// MessageSearchText is the text of m that a search matches: a user's or
// system's content; an assistant's text, the message of its send_message
// calls and (unless textOnly) its other calls' names and arguments; a
// tool return's content (unless textOnly; a successful send_message's
// return, which clients never see, has none).
func MessageSearchText(m *Message, textOnly bool) string {
	switch m.Role {
	case llm.RoleUser, llm.RoleSystem:
		return m.Content
	case llm.RoleAssistant:
		parts := make([]string, 0, 1+len(m.ToolCalls))
		if m.Content != "" {
			parts = append(parts, m.Content)
		}
		for _, tc := range m.ToolCalls {
			if tc.Name == ToolSendMessage {
				var args struct {
					Message string `json:"message"`
				}
				if json.Unmarshal([]byte(tc.Arguments), &args) == nil {
					parts = append(parts, args.Message)
					continue
				}
			}
			if !textOnly {
				parts = append(parts, tc.Name+" "+tc.Arguments)
			}
		}
		return strings.Join(parts, "\n")
	case llm.RoleTool:
		if textOnly || (m.ToolName == ToolSendMessage && m.ToolStatus == ToolSuccess) {
			return ""
		}
		return m.Content
	}
	return ""
}

// SearchStoredMessages runs req over committed storage, read through tx.
func SearchStoredMessages(ctx context.Context, tx *storage.Txn, req MessageSearchRequest) (*MessageSearchResponse, error) {
	if err := checkMessageSearch(&req); err != nil {
		return nil, err
	}
	s := newMessageSearcher(&req)
	if req.AgentID != "" {
		if err := s.searchAgent(ctx, tx, req.AgentID, req.ConversationID); err != nil {
			return nil, err
		}
	} else {
		prefix := ByCreatedPrefix()
		kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: prefix, End: prefix.End(), Reverse: true, Limit: MessageSearchAgentsMax + 1})
		if err != nil {
			return nil, err
		}
		if len(kvs) > MessageSearchAgentsMax {
			kvs, s.partial = kvs[:MessageSearchAgentsMax], true
		}
		for _, kv := range kvs {
			if s.exhausted() {
				s.partial = true // agents left unread
				break
			}
			elems, err := tuple.Unpack(kv.Key[len(prefix):])
			if err != nil || len(elems) != 2 {
				return nil, fmt.Errorf("%w: index key %q", storage.ErrCorrupt, kv.Key)
			}
			id, _ := elems[1].(string)
			if err := s.searchAgent(ctx, tx, id, ""); err != nil {
				return nil, err
			}
		}
	}
	return &MessageSearchResponse{Results: s.top, Ranked: len(s.terms) > 0, Partial: s.partial}, nil
}

// messageSearcher keeps the best Limit messages fed to it.
type messageSearcher struct {
	req *MessageSearchRequest
	// terms are the query's distinct terms (at most searchTermsMax), and
	// seen which of them the message being scored contains.
	terms []string
	seen  []bool
	buf   []byte
	// top holds the best results so far, best first, at most req.Limit.
	top      []MessageSearchResult
	examined int
	partial  bool
}

func newMessageSearcher(req *MessageSearchRequest) *messageSearcher {
	s := &messageSearcher{req: req, top: []MessageSearchResult{}}
	for _, t := range Tokenize(req.Query) {
		if !slices.Contains(s.terms, t) && len(s.terms) < searchTermsMax {
			s.terms = append(s.terms, t)
		}
	}
	s.seen = make([]bool, len(s.terms))
	return s
}

// exhausted reports whether the search has read all it may.
func (s *messageSearcher) exhausted() bool { return s.examined >= MessageSearchExaminedMax }

// searchAgent searches one agent's conversations: the one named, or the
// default one and the newest MessageSearchConversationsMax others.
func (s *messageSearcher) searchAgent(ctx context.Context, tx *storage.Txn, agentID, conversationID string) error {
	aid := ActorID(agentID)
	if err := aid.Validate(); err != nil {
		return fmt.Errorf("%w: agent %q", ErrNotFound, agentID)
	}
	base := aid.KVPrefix()
	switch conversationID {
	case ConversationDefault:
		return s.searchLog(ctx, tx, agentID, append(keyCopy(base), MessagePrefix()...))
	case "":
	default:
		return s.searchLog(ctx, tx, agentID, append(keyCopy(base), conversationMessagePrefix(conversationID)...))
	}
	if err := s.searchLog(ctx, tx, agentID, append(keyCopy(base), MessagePrefix()...)); err != nil {
		return err
	}
	order := append(keyCopy(base), conversationOrderPrefix()...)
	kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: order, End: tuple.Key(order).End(), Reverse: true, Limit: MessageSearchConversationsMax + 1})
	if err != nil {
		return err
	}
	if len(kvs) > MessageSearchConversationsMax {
		kvs, s.partial = kvs[:MessageSearchConversationsMax], true
	}
	for _, kv := range kvs {
		if s.exhausted() {
			s.partial = true
			return nil
		}
		if err := s.searchLog(ctx, tx, agentID, append(keyCopy(base), conversationMessagePrefix(string(kv.Value))...)); err != nil {
			return err
		}
	}
	return nil
}

// keyCopy returns k with its capacity clipped, so appending to it copies.
func keyCopy(k tuple.Key) []byte { return slices.Clip([]byte(k)) }

// searchLog feeds the newest entries of the log under prefix (an
// absolute key prefix) to the searcher, within MessageSearchLogMax and
// MessageSearchExaminedMax.
func (s *messageSearcher) searchLog(ctx context.Context, tx *storage.Txn, agentID string, prefix []byte) error {
	start, end := prefix, []byte(tuple.Key(prefix).End())
	for read := 0; ; {
		n := min(messageSearchPage, MessageSearchLogMax-read, MessageSearchExaminedMax-s.examined)
		if n <= 0 {
			// A bound is reached: is anything left unread?
			kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: start, End: end, Reverse: true, Limit: 1})
			if err != nil {
				return err
			}
			s.partial = s.partial || len(kvs) > 0
			return nil
		}
		kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: start, End: end, Reverse: true, Limit: n})
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			var m Message
			if err := json.Unmarshal(kv.Value, &m); err != nil {
				return fmt.Errorf("%w: message %q: %v", storage.ErrCorrupt, kv.Key, err)
			}
			s.add(agentID, &m)
		}
		read += len(kvs)
		s.examined += len(kvs)
		if len(kvs) < n {
			return nil
		}
		end = kvs[len(kvs)-1].Key
	}
}

// add scores m and keeps it if it is among the best so far.
func (s *messageSearcher) add(agentID string, m *Message) {
	req := s.req
	if len(req.Roles) > 0 && !slices.Contains(req.Roles, m.Role) {
		return
	}
	if (req.After != nil && !m.CreatedAt.After(*req.After)) || (req.Until != nil && m.CreatedAt.After(*req.Until)) {
		return
	}
	text := MessageSearchText(m, req.TextOnly)
	if req.TextOnly && strings.TrimSpace(text) == "" {
		return
	}
	matches := 0
	if len(s.terms) > 0 {
		clear(s.seen)
		s.buf = forEachToken(text, s.buf, func(tok []byte) {
			for i, t := range s.terms {
				if !s.seen[i] && t == string(tok) {
					s.seen[i] = true
					matches++
				}
			}
		})
		if matches == 0 {
			return
		}
	}
	r := MessageSearchResult{Message: *m, AgentID: agentID, Text: text, Matches: matches}
	i, _ := slices.BinarySearchFunc(s.top, r, compareMessageResults)
	if i >= req.Limit {
		return
	}
	s.top = slices.Insert(s.top, i, r)
	if len(s.top) > req.Limit {
		s.top = s.top[:req.Limit]
	}
}

// compareMessageResults orders results best first: more matches, then
// newer, then by agent, conversation and (descending) sequence number, so
// the order is total and deterministic.
func compareMessageResults(a, b MessageSearchResult) int {
	if a.Matches != b.Matches {
		return b.Matches - a.Matches
	}
	if c := b.Message.CreatedAt.Compare(a.Message.CreatedAt); c != 0 {
		return c
	}
	if c := strings.Compare(a.AgentID, b.AgentID); c != 0 {
		return c
	}
	if c := strings.Compare(a.Message.ConversationID, b.Message.ConversationID); c != 0 {
		return c
	}
	switch {
	case a.Message.Seq > b.Message.Seq:
		return -1
	case a.Message.Seq < b.Message.Seq:
		return 1
	}
	return 0
}
