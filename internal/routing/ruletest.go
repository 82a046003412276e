package routing

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// RuleTestStore is what testing rules on a stored message reads of the store.
type RuleTestStore interface {
	Message(ctx context.Context, id int64) (store.Message, error)
	RawMessage(ctx context.Context, messageID int64) ([]byte, error)
	Mailbox(ctx context.Context, id int64) (store.Mailbox, error)
}

// RuleTest is the outcome of running rules on a stored message, as an admin sees it
// before saving a rule (or to understand why the saved rules routed a message).
type RuleTest struct {
	MessageID int64  `json:"message_id"`
	Mailbox   string `json:"mailbox"`
	From      string `json:"from"`
	Subject   string `json:"subject"`
	// Rules tells, rule by rule in evaluation order, whether each condition held and
	// what it saw, and whether the rule's actions applied.
	Rules []RuleTrace `json:"rules"`
	// Actions are the merged actions that would apply (zero when no rule applies);
	// Applied the ids of the rules that applied (0 for an unsaved rule).
	Actions Actions `json:"actions"`
	Applied []int64 `json:"applied"`
	// Language is the message's language as the rules saw it ("" when no rule asked or
	// it was not recognised).
	Language string `json:"language,omitempty"`
}

// TryRules runs rules on the stored inbound message messageID exactly as classification
// at ingest does (FactsFrom with the mailbox's name and the raw header), without changing
// anything. Invalid rules give Compile's *ValidationError; an unknown message
// store.ErrNotFound (wrapped).
func TryRules(ctx context.Context, st RuleTestStore, rules []Rule, messageID int64) (RuleTest, error) {
	rs, err := Compile(rules)
	if err != nil {
		return RuleTest{}, err
	}
	m, err := st.Message(ctx, messageID)
	if err != nil {
		return RuleTest{}, fmt.Errorf("message %d: %w", messageID, err)
	}
	raw, err := st.RawMessage(ctx, messageID)
	if err != nil && !store.IsNotFound(err) {
		return RuleTest{}, fmt.Errorf("raw message %d: %w", messageID, err)
	}
	name := ""
	if mb, err := st.Mailbox(ctx, m.MailboxID); err == nil {
		name = mb.Name
	} else if !store.IsNotFound(err) {
		return RuleTest{}, fmt.Errorf("mailbox of message %d: %w", messageID, err)
	}
	facts := FactsFrom(name, m, message.Header(raw))
	res := rs.Classify(facts)
	out := RuleTest{MessageID: m.ID, Mailbox: name, From: m.FromAddr, Subject: m.Subject,
		Rules: rs.Explain(facts), Actions: res.Actions, Applied: res.Applied, Language: res.Language}
	if out.Applied == nil {
		out.Applied = []int64{}
	}
	return out, nil
}

// TryRule tests one rule, saved or not, on a stored message. A disabled rule is tested
// as if it were enabled, so that a rule can be tried before it is switched on.
func TryRule(ctx context.Context, st RuleTestStore, r Rule, messageID int64) (RuleTest, error) {
	r.Enabled = true
	return TryRules(ctx, st, []Rule{r}, messageID)
}

// RuleOf decodes a stored rule, with its id, name and position from the store.
func RuleOf(o store.RoutingObject) (Rule, error) {
	var r Rule
	if err := json.Unmarshal(o.Spec, &r); err != nil {
		return Rule{}, fmt.Errorf("rule %q (id %d): %w", o.Name, o.ID, err)
	}
	r.ID, r.Name, r.Position = o.ID, o.Name, o.Position
	return r, nil
}

// CalendarOf decodes a stored calendar.
func CalendarOf(o store.RoutingObject) (Calendar, error) {
	var c Calendar
	if err := json.Unmarshal(o.Spec, &c); err != nil {
		return Calendar{}, fmt.Errorf("calendar %q (id %d): %w", o.Name, o.ID, err)
	}
	c.ID, c.Name = o.ID, o.Name
	return c, nil
}

// SchemaOf decodes a stored prioritisation schema.
func SchemaOf(o store.RoutingObject) (Schema, error) {
	var s Schema
	if err := json.Unmarshal(o.Spec, &s); err != nil {
		return Schema{}, fmt.Errorf("schema %q (id %d): %w", o.Name, o.ID, err)
	}
	s.ID, s.Name = o.ID, o.Name
	return s, nil
}

// SLAPolicyOf decodes a stored SLA policy.
func SLAPolicyOf(o store.RoutingObject) (SLAPolicy, error) {
	var p SLAPolicy
	if err := json.Unmarshal(o.Spec, &p); err != nil {
		return SLAPolicy{}, fmt.Errorf("SLA policy %q (id %d): %w", o.Name, o.ID, err)
	}
	p.ID, p.Name = o.ID, o.Name
	return p, nil
}

// SavedRules reads the stored rules in evaluation order.
func SavedRules(ctx context.Context, st interface {
	ListRoutingObjects(ctx context.Context, kind string) ([]store.RoutingObject, error)
}) ([]Rule, error) {
	objs, err := st.ListRoutingObjects(ctx, store.KindRule)
	if err != nil {
		return nil, err
	}
	rules := make([]Rule, 0, len(objs))
	for _, o := range objs {
		r, err := RuleOf(o)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}
