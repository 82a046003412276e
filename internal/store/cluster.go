package store

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseLost is returned by a write that carries a Fence when the mailbox's lease is no
// longer the fence's (another node took it, or this node released it): the ingest loop
// that made the write must stop at once, writing nothing more.
var ErrLeaseLost = errors.New("mailbox lease lost to another node")

// Fence names one holding of a mailbox's lease: the holder node and the lease's
// generation when it was taken. A write that carries a non-zero Fence (a cursor, an
// acknowledgement, an ingested message, a status) checks in its transaction that the
// mailbox's lease is still (NodeID, Generation) and fails with ErrLeaseLost otherwise. The
// zero Fence checks nothing (single-node callers, administration commands, old callers).
type Fence struct {
	MailboxID  int64
	NodeID     string
	Generation int64
}

// IsZero reports whether f checks nothing.
func (f Fence) IsZero() bool { return f.NodeID == "" }

// Node is one running postroom process of a cluster (internal/cluster).
type Node struct {
	// ID is "<Name>/<Instance>": unique to one process.
	ID string
	// Name is the node's name (POSTROOM_NODE_NAME or the data folder's node-id); Instance
	// a random id made at the process's start.
	Name        string
	Instance    string
	StartedAt   time.Time
	HeartbeatAt time.Time
	// Stopping is set when the node shuts down gracefully and hands its leases over.
	Stopping bool
	// Leases is how many unexpired leases the node holds (filled by ListNodes).
	Leases int
}

// Lease is one mailbox's lease (an empty NodeID: free).
type Lease struct {
	MailboxID  int64
	NodeID     string
	Generation int64
	AcquiredAt time.Time
	ExpiresAt  time.Time
}

// Fence is the lease's fence.
func (l Lease) Fence() Fence {
	return Fence{MailboxID: l.MailboxID, NodeID: l.NodeID, Generation: l.Generation}
}

// BalanceRequest is one renewal round of a node's leases (Cluster.BalanceLeases).
type BalanceRequest struct {
	// NodeID is the node renewing and taking leases.
	NodeID string
	// Mailboxes are the mailboxes that need a holder (the enabled inbound ones); leases of
	// other mailboxes that the node holds are released.
	Mailboxes []int64
	// Now is the node's time; the leases it holds or takes expire at Now + TTL.
	Now time.Time
	TTL time.Duration
	// LiveSince: nodes whose heartbeat is at or after it, and that are not stopping, are
	// live and share the mailboxes.
	LiveSince time.Time
}

// Cluster keeps the nodes of a cluster and the mailboxes' leases (internal/cluster), and
// the fenced writes of a lease holder.
type Cluster interface {
	// NodeHeartbeat creates or updates the node's row (ID, Name, Instance, StartedAt,
	// HeartbeatAt, Stopping) and deletes the rows of nodes whose heartbeat is before
	// forgetBefore (long dead).
	NodeHeartbeat(ctx context.Context, n Node, forgetBefore time.Time) error
	// ReleasePredecessors frees the leases of every other node of the same Name as self
	// (earlier processes of this node, dead since self runs) — or, with allOthers, of
	// every other node (SQLite: one node only) — and deletes those nodes' rows. It
	// returns how many leases it freed; the next take increments their generation.
	ReleasePredecessors(ctx context.Context, self Node, allOthers bool, now time.Time) (int, error)
	// BalanceLeases runs one round for r.NodeID in one transaction: it renews the leases
	// the node holds (unless expired), frees those of mailboxes no longer listed and those
	// above its fair share (ceil(mailboxes / live nodes)), and takes free or expired
	// leases up to its share, each take incrementing the lease's generation. Leases locked
	// by another node's round are skipped (PostgreSQL FOR UPDATE SKIP LOCKED): of several
	// nodes taking at once, exactly one gets each mailbox. It returns the leases the node
	// holds after the round.
	BalanceLeases(ctx context.Context, r BalanceRequest) ([]Lease, error)
	// ReleaseLeases frees every lease of the node and marks it stopping (graceful
	// shutdown: the other nodes take its mailboxes at their next round); it returns how
	// many it freed.
	ReleaseLeases(ctx context.Context, nodeID string, now time.Time) (int, error)
	// ListNodes lists the known nodes by name, each with the count of its leases
	// unexpired at now.
	ListNodes(ctx context.Context, now time.Time) ([]Node, error)
	// ListLeases lists the leases held (NodeID not empty), by mailbox.
	ListLeases(ctx context.Context) ([]Lease, error)

	// MarkAckedFenced is MarkAcked of f.MailboxID that checks f in its transaction
	// (ErrLeaseLost). SetMailboxStatusFenced is SetMailboxStatus that does the same. The
	// cursor and ingest writes carry their fence in Cursor.Fence and InboundMessage.Fence.
	MarkAckedFenced(ctx context.Context, f Fence, sourceIDs ...string) error
	SetMailboxStatusFenced(ctx context.Context, f Fence, st MailboxStatus) error
}
