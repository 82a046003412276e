package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/store"
)

// clusterMetrics publishes every known node's leases and heartbeat age, as this node saw
// them at its last round. Without a registry it does nothing.
type clusterMetrics struct {
	leases *metrics.Gauge // postroom_cluster_leases_held{node}
	age    *metrics.Gauge // postroom_cluster_heartbeat_age_seconds{node}

	mu    *sync.Mutex
	known map[string]bool
}

func newClusterMetrics(r *metrics.Registry) clusterMetrics {
	if r == nil {
		return clusterMetrics{}
	}
	return clusterMetrics{
		leases: r.Gauge("postroom_cluster_leases_held",
			"Unexpired mailbox leases a node holds (each enabled inbound mailbox is ingested by its lease holder).", "node"),
		age: r.Gauge("postroom_cluster_heartbeat_age_seconds",
			"Seconds since a node's last heartbeat, as seen at this node's last lease round; above the lease time the node counts as dead.", "node"),
		mu:    &sync.Mutex{},
		known: map[string]bool{},
	}
}

func (m clusterMetrics) update(ctx context.Context, st store.Cluster, log *slog.Logger) {
	if m.leases == nil {
		return
	}
	now := time.Now()
	nodes, err := st.ListNodes(ctx, now)
	if err != nil {
		log.Debug("cluster: cannot read the nodes for the metrics", slog.Any("error", err))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, n := range nodes {
		seen[n.ID] = true
		m.known[n.ID] = true
		m.leases.Set(float64(n.Leases), n.ID)
		m.age.Set(max(0, now.Sub(n.HeartbeatAt).Seconds()), n.ID)
	}
	for id := range m.known {
		if !seen[id] {
			m.leases.Delete(id)
			m.age.Delete(id)
			delete(m.known, id)
		}
	}
}
