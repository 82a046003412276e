package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// Node states on the status pages and in the API.
const (
	StateLive     = "live"     // heartbeat within the lease time
	StateStopping = "stopping" // shut down gracefully, leases handed over
	StateDead     = "dead"     // no heartbeat for longer than the lease time
)

// NodeStatus is one node as the Nodes page and GET /api/v1/nodes show it.
type NodeStatus struct {
	ID                  string    `json:"id"`
	Name                string    `json:"name"`
	Instance            string    `json:"instance"`
	StartedAt           time.Time `json:"started_at"`
	HeartbeatAt         time.Time `json:"heartbeat_at"`
	HeartbeatAgeSeconds float64   `json:"heartbeat_age_seconds"`
	State               string    `json:"state"`
	Leases              int       `json:"leases"`
}

// LeaseStatus is one held lease: the mailbox and the node that reads it.
type LeaseStatus struct {
	MailboxID  int64     `json:"mailbox_id"`
	Mailbox    string    `json:"mailbox"`
	NodeID     string    `json:"node_id"`
	NodeName   string    `json:"node_name"`
	Generation int64     `json:"generation"`
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Expired    bool      `json:"expired"`
}

// Status is the cluster seen from the database.
type Status struct {
	LeaseSeconds int           `json:"lease_seconds"`
	Nodes        []NodeStatus  `json:"nodes"`
	Leases       []LeaseStatus `json:"leases"`
}

// StatusStore is what LoadStatus reads.
type StatusStore interface {
	store.Cluster
	ListMailboxes(ctx context.Context) ([]store.Mailbox, error)
}

// LoadStatus reads the nodes and the held leases at now; leaseTime (0: DefaultLeaseTime)
// decides which nodes count as dead.
func LoadStatus(ctx context.Context, st StatusStore, leaseTime time.Duration, now time.Time) (Status, error) {
	if leaseTime <= 0 {
		leaseTime = DefaultLeaseTime
	}
	nodes, err := st.ListNodes(ctx, now)
	if err != nil {
		return Status{}, fmt.Errorf("list the nodes: %w", err)
	}
	leases, err := st.ListLeases(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("list the leases: %w", err)
	}
	boxes, err := st.ListMailboxes(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("list the mailboxes: %w", err)
	}
	s := Status{LeaseSeconds: int(leaseTime / time.Second), Nodes: []NodeStatus{}, Leases: []LeaseStatus{}}
	for _, n := range nodes {
		ns := NodeStatus{ID: n.ID, Name: n.Name, Instance: n.Instance, StartedAt: n.StartedAt, HeartbeatAt: n.HeartbeatAt,
			HeartbeatAgeSeconds: max(0, now.Sub(n.HeartbeatAt).Round(100*time.Millisecond).Seconds()), Leases: n.Leases}
		switch {
		case n.Stopping:
			ns.State = StateStopping
		case now.Sub(n.HeartbeatAt) > leaseTime:
			ns.State = StateDead
		default:
			ns.State = StateLive
		}
		s.Nodes = append(s.Nodes, ns)
	}
	names := map[int64]string{}
	for _, m := range boxes {
		names[m.ID] = m.Name
	}
	for _, l := range leases {
		name, ok := names[l.MailboxID]
		if !ok {
			continue // deleted mailbox
		}
		s.Leases = append(s.Leases, LeaseStatus{MailboxID: l.MailboxID, Mailbox: name, NodeID: l.NodeID, NodeName: NodeName(l.NodeID),
			Generation: l.Generation, AcquiredAt: l.AcquiredAt, ExpiresAt: l.ExpiresAt, Expired: !l.ExpiresAt.After(now)})
	}
	return s, nil
}

// NodeName is the name part of a node id "<name>/<instance>".
func NodeName(id string) string {
	name, _, _ := strings.Cut(id, "/")
	return name
}

// Holder returns the lease of a mailbox in s (ok false: nobody holds it).
func (s Status) Holder(mailboxID int64) (LeaseStatus, bool) {
	for _, l := range s.Leases {
		if l.MailboxID == mailboxID {
			return l, true
		}
	}
	return LeaseStatus{}, false
}
