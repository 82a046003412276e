package routing

import (
	"time"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// Classifier turns an inbound message into its routing (store.Classification) with the
// current configuration: the classification rules, then the queue's defaults and SLA
// clocks. It is pure apart from reading the configuration snapshot, and cheap enough to
// run for every message at ingest.
type Classifier struct {
	// Config returns the current snapshot (the engine's).
	Config func() *Config
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Classify sets in.Classification.
func (c Classifier) Classify(m store.Mailbox, in *store.InboundMessage) {
	cfg := c.Config()
	if cfg == nil {
		return
	}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	h := message.Header(in.Raw)
	facts := FactsFrom(m.Name, in.Message, h)
	res := cfg.RuleSet.Classify(facts)
	a := res.Actions
	cl := &store.Classification{QueueID: a.QueueID, Category: a.Category, Tags: a.Tags, PriorityAdjust: a.PriorityAdjust,
		Skills: a.Skills, Language: a.Language, SchemaID: a.SchemaID, SLAPolicyID: a.SLAPolicyID, Close: a.Close}
	if cl.QueueID == 0 || cfg.Queues[cl.QueueID] == nil {
		cl.QueueID = m.QueueID
	}
	if cl.QueueID == 0 {
		cl.QueueID = cfg.DefaultQueue
	}
	// Automatic mail (auto-replies, bounces, lists) never reopens a conversation's item.
	if facts.Automatic != "" {
		cl.NoReopen = true
		// A rule that sent it to a queue routes it anyway.
		cl.RouteAutomatic = a.QueueID != 0 && a.Close == ""
	}
	start := in.ReceivedAt
	if start.IsZero() || start.After(now) {
		start = now
	}
	cl.FirstDue, cl.FirstRisk = cfg.SLAClock(cl.QueueID, cl.SLAPolicyID, start, false)
	cl.NextDue, cl.NextRisk = cfg.SLAClock(cl.QueueID, cl.SLAPolicyID, start, true)
	if q := cfg.Queues[cl.QueueID]; q != nil {
		cl.PreferredWait = q.Settings.PreferredWait()
	} else {
		cl.PreferredWait = DefaultPreferredWait
	}
	in.Classification = cl
}
