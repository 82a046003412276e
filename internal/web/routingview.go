package web

import (
	"fmt"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// routingRunning reports whether the routing engine and the lifecycle service are wired:
// without them the agent's pages show no routing buttons and say why.
func (h *handler) routingRunning() bool { return h.engine != nil && h.work != nil }

// routingOff is what the pages say when routing is not running.
const routingOff = "Routing is not running on this server: offers, Get next, statuses and work item actions are unavailable. Ask an administrator."

// formatDuration says how long d is, to the second under an hour ("1 min 40 s", "45 s",
// "2 h 5 min", "3 d 4 h"); negative durations are shown as their size.
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
		if s == 0 {
			return fmt.Sprintf("%d min", m)
		}
		return fmt.Sprintf("%d min %d s", m, s)
	case d < 24*time.Hour:
		hr, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", hr)
		}
		return fmt.Sprintf("%d h %d min", hr, m)
	default:
		days, hr := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if hr == 0 {
			return fmt.Sprintf("%d d", days)
		}
		return fmt.Sprintf("%d d %d h", days, hr)
	}
}

// slaView is a work item's SLA timer as a page shows it.
type slaView struct {
	Text string // "due in 3 h 10 min", "overdue by 5 min", "paused, 2 h left", "" for none
	// Class is "" (running), "at-risk", "overdue" or "paused" (a CSS class).
	Class string
	Due   time.Time
}

// slaOf computes wi's SLA timer at now: a done or cancelled item has none; a pending one
// shows what is left on its paused clock.
func slaOf(wi store.WorkItem, now time.Time) slaView {
	if !workitem.State(wi.State).Open() {
		return slaView{}
	}
	switch {
	case wi.SLADueAt.IsZero() && wi.SLARemaining > 0:
		return slaView{Text: "paused, " + formatDuration(wi.SLARemaining) + " left", Class: "paused"}
	case wi.SLADueAt.IsZero():
		return slaView{}
	case !now.Before(wi.SLADueAt):
		return slaView{Text: "overdue by " + formatDuration(now.Sub(wi.SLADueAt)), Class: "overdue", Due: wi.SLADueAt}
	case !wi.SLARiskAt.IsZero() && !now.Before(wi.SLARiskAt):
		return slaView{Text: "due in " + formatDuration(wi.SLADueAt.Sub(now)) + " (at risk)", Class: "at-risk", Due: wi.SLADueAt}
	default:
		return slaView{Text: "due in " + formatDuration(wi.SLADueAt.Sub(now)), Due: wi.SLADueAt}
	}
}

// itemRow is a work item with what the lists compute for it at one moment.
type itemRow struct {
	store.WorkItem
	// Priority is computed from the routing configuration (never stored); HasPriority is
	// false for items that are no longer open or when routing is not running.
	Priority    int
	HasPriority bool
	Breakdown   routing.Breakdown
	SLA         slaView
	// OfferLeft is the time left to accept an offer ("1 min 40 s left", "expired").
	OfferLeft string
}

// itemRowOf computes the list fields of wi at now.
func itemRowOf(cfg *routing.Config, wi store.WorkItem, now time.Time) itemRow {
	r := itemRow{WorkItem: wi, SLA: slaOf(wi, now)}
	if cfg != nil && workitem.State(wi.State).Open() {
		r.Priority, r.Breakdown = cfg.Priority(routing.ItemOf(wi), now)
		r.HasPriority = true
	}
	if wi.State == store.StateOffered && !wi.OfferExpiresAt.IsZero() {
		if left := wi.OfferExpiresAt.Sub(now); left > 0 {
			r.OfferLeft = formatDuration(left) + " left"
		} else {
			r.OfferLeft = "expired"
		}
	}
	return r
}

// routingConfig returns the engine's configuration snapshot (nil without routing).
func (h *handler) routingConfig() *routing.Config {
	if h.engine == nil {
		return nil
	}
	return h.engine.Config()
}
