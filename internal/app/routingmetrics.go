package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// routingMetricsEvery is how often the board's figures are published to /metrics.
const routingMetricsEvery = 15 * time.Second

// routingMetrics publishes the supervisor board's figures for Prometheus:
// postroom_queue_items{queue,state}, postroom_queue_oldest_age_seconds{queue},
// postroom_queue_sla_at_risk{queue}, postroom_queue_sla_breached{queue} and
// postroom_agents{status}. A queue that is gone is removed.
type routingMetrics struct {
	st                          routing.BoardStore
	log                         *slog.Logger
	items, oldest, risk, breach *metrics.Gauge
	agents                      *metrics.Gauge
	shown                       map[string]bool // queue names published
}

func newRoutingMetrics(st routing.BoardStore, reg *metrics.Registry, log *slog.Logger) *routingMetrics {
	return &routingMetrics{st: st, log: log, shown: map[string]bool{},
		items:  reg.Gauge("postroom_queue_items", "Work items of a queue that still need work, by state.", "queue", "state"),
		oldest: reg.Gauge("postroom_queue_oldest_age_seconds", "Age in its queue of the oldest item waiting for an agent (0: none waits).", "queue"),
		risk:   reg.Gauge("postroom_queue_sla_at_risk", "Items of a queue past their SLA at-risk instant, not yet breached.", "queue"),
		breach: reg.Gauge("postroom_queue_sla_breached", "Items of a queue past their SLA due instant without an answer.", "queue"),
		agents: reg.Gauge("postroom_agents", "Enabled users by agent status.", "status"),
	}
}

func (m *routingMetrics) run(ctx context.Context) {
	t := time.NewTicker(routingMetricsEvery)
	defer t.Stop()
	for {
		if err := m.publish(ctx, time.Now()); err != nil && ctx.Err() == nil {
			m.log.Warn("routing figures for /metrics not updated; retrying", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publish sets the gauges from the board at now.
func (m *routingMetrics) publish(ctx context.Context, now time.Time) error {
	b, err := routing.LoadBoard(ctx, m.st, now)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	open := []string{store.StateQueued, store.StateOffered, store.StateAssigned, store.StatePending, store.StateOnHold}
	for _, q := range b.Queues {
		seen[q.Name] = true
		for _, st := range open {
			m.items.Set(float64(q.ByState[st]), q.Name, st)
		}
		m.oldest.Set(float64(q.OldestAgeS), q.Name)
		m.risk.Set(float64(q.AtRisk), q.Name)
		m.breach.Set(float64(q.Breached), q.Name)
	}
	for name := range m.shown {
		if !seen[name] {
			for _, st := range open {
				m.items.Delete(name, st)
			}
			m.oldest.Delete(name)
			m.risk.Delete(name)
			m.breach.Delete(name)
		}
	}
	m.shown = seen
	count := map[string]int{store.AgentAvailable: 0, store.AgentAway: 0, store.AgentOffline: 0}
	for _, a := range b.Agents {
		count[a.Status]++
	}
	for st, n := range count {
		m.agents.Set(float64(n), st)
	}
	return nil
}
