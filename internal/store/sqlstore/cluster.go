package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// takeChunk bounds the mailbox ids of one IN list when leases are taken.
const takeChunk = 2000

// checkFence fails with store.ErrLeaseLost unless the mailbox's lease is still f's. On
// PostgreSQL the lease row is locked FOR KEY SHARE until the transaction ends, so that a
// node taking the lease (which changes node_id and generation, key columns through the
// unique index mailbox_leases_holding, and so locks the row FOR UPDATE) waits for this
// write to commit, or this write, coming after the take, sees the new holder: nothing is
// written behind the new holder. The holder's own renewal changes only expires_at (FOR NO
// KEY UPDATE) and does not wait for its ingest transactions. On SQLite the single writer
// orders them all.
func (s *Store) checkFence(ctx context.Context, tx runner, f store.Fence) error {
	if f.IsZero() {
		return nil
	}
	var one int
	err := tx.queryRow(ctx, `SELECT 1 FROM mailbox_leases WHERE mailbox_id = ? AND node_id = ? AND generation = ?`+s.d.fenceLock,
		f.MailboxID, f.NodeID, f.Generation).Scan(&one)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("mailbox %d, node %s, generation %d: %w", f.MailboxID, f.NodeID, f.Generation, store.ErrLeaseLost)
		}
		return fmt.Errorf("check the lease of mailbox %d: %w", f.MailboxID, err)
	}
	return nil
}

// NodeHeartbeat creates or updates the node's row and forgets long-dead nodes.
func (s *Store) NodeHeartbeat(ctx context.Context, n store.Node, forgetBefore time.Time) error {
	op := fmt.Sprintf("heartbeat of node %s", n.ID)
	if n.ID == "" {
		return fmt.Errorf("%s: the node has no id", op)
	}
	err := s.inTx(ctx, func(tx runner) error {
		_, err := tx.exec(ctx, `INSERT INTO cluster_nodes (id, name, instance, started_at, heartbeat_at, stopping)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopping = excluded.stopping`,
			clean(n.ID), clean(n.Name), clean(n.Instance), s.d.timeArg(n.StartedAt), s.d.timeArg(n.HeartbeatAt), n.Stopping)
		if err != nil {
			return err
		}
		if !forgetBefore.IsZero() {
			_, err = tx.exec(ctx, `DELETE FROM cluster_nodes WHERE heartbeat_at < ? AND id <> ?`, s.d.timeArg(forgetBefore), clean(n.ID))
		}
		return err
	})
	return s.wrap(op, err)
}

// ReleasePredecessors frees the leases of the other processes of self's name (or of every
// other node) and forgets their rows. A node id is "<name>/<instance>" and a name holds no
// '/', so the ids of a name are those from "<name>/" up to "<name>0" ('0' follows '/').
func (s *Store) ReleasePredecessors(ctx context.Context, self store.Node, allOthers bool, now time.Time) (int, error) {
	op := fmt.Sprintf("release the leases of the earlier processes of node %s", self.Name)
	if self.ID == "" {
		return 0, fmt.Errorf("%s: the node has no id", op)
	}
	var freed int64
	err := s.inTx(ctx, func(tx runner) error {
		q := `UPDATE mailbox_leases SET node_id = '', expires_at = ? WHERE node_id <> '' AND node_id <> ?`
		d := `DELETE FROM cluster_nodes WHERE id <> ?`
		args := []any{s.d.timeArg(now), clean(self.ID)}
		dargs := []any{clean(self.ID)}
		if !allOthers {
			q += ` AND node_id >= ? AND node_id < ?`
			d += ` AND name = ?`
			args = append(args, clean(self.Name)+"/", clean(self.Name)+"0")
			dargs = append(dargs, clean(self.Name))
		}
		res, err := tx.exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if freed, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.exec(ctx, d, dargs...)
		return err
	})
	return int(freed), s.wrap(op, err)
}

// BalanceLeases runs one round of r.NodeID's leases (store.Cluster). The node first locks
// its own rows, then takes with SKIP LOCKED, which never waits: two nodes' rounds cannot
// wait for each other in a circle.
func (s *Store) BalanceLeases(ctx context.Context, r store.BalanceRequest) ([]store.Lease, error) {
	op := fmt.Sprintf("balance the leases of node %s", r.NodeID)
	if r.NodeID == "" || r.TTL <= 0 {
		return nil, fmt.Errorf("%s: no node id or lease time", op)
	}
	want := map[int64]bool{}
	for _, id := range r.Mailboxes {
		want[id] = true
	}
	ids := make([]int64, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now, until := s.d.timeArg(r.Now), s.d.timeArg(r.Now.Add(r.TTL))
	var held []store.Lease
	err := s.inTx(ctx, func(tx runner) error {
		held = nil
		// Rows for the mailboxes that have none yet (free, generation 0).
		known := map[int64]bool{}
		rows, err := tx.query(ctx, `SELECT mailbox_id FROM mailbox_leases`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			known[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if !known[id] {
				if _, err := tx.exec(ctx, `INSERT INTO mailbox_leases (mailbox_id) VALUES (?) ON CONFLICT (mailbox_id) DO NOTHING`, id); err != nil {
					return err
				}
			}
		}
		// The node's own rows, locked; the unexpired ones of listed mailboxes are renewed,
		// the others freed.
		rows, err = tx.query(ctx, `SELECT mailbox_id, expires_at FROM mailbox_leases WHERE node_id = ? ORDER BY mailbox_id`+s.d.renewLock, r.NodeID)
		if err != nil {
			return err
		}
		// An own lease that expired (the node missed its renewals) is taken again below
		// like any expired one, with a new generation.
		var keep, free []int64
		for rows.Next() {
			var id int64
			var exp time.Time
			if err := rows.Scan(&id, tcol(&exp)); err != nil {
				rows.Close()
				return err
			}
			switch {
			case !want[id]:
				free = append(free, id)
			case exp.After(r.Now):
				keep = append(keep, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// The fair share: ceil(mailboxes / live nodes), this node counted live.
		var others int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM cluster_nodes WHERE id <> ? AND NOT stopping AND heartbeat_at >= ?`,
			r.NodeID, s.d.timeArg(r.LiveSince)).Scan(&others); err != nil {
			return err
		}
		live := others + 1
		share := (len(ids) + live - 1) / live
		if len(keep) > share { // a new node came: the surplus goes to it
			free = append(free, keep[share:]...)
			keep = keep[:share]
		}
		for _, id := range free {
			if _, err := tx.exec(ctx, `UPDATE mailbox_leases SET node_id = '', expires_at = ? WHERE mailbox_id = ? AND node_id = ?`, now, id, r.NodeID); err != nil {
				return err
			}
		}
		// What is left of the node's unexpired rows is keep: one statement renews them all
		// (10,000 mailboxes on one node renew in one round trip).
		if len(keep) > 0 {
			if _, err := tx.exec(ctx, `UPDATE mailbox_leases SET expires_at = ? WHERE node_id = ? AND expires_at > ?`, until, r.NodeID, now); err != nil {
				return err
			}
		}
		// Take free or expired leases up to the share. The query locks (SKIP LOCKED) only as
		// many rows as this node takes: locking every free row it saw would hide them from
		// another node's round running at the same moment, which then takes nothing (two
		// survivors of a killed node, their rounds in step, would delay its mailboxes by
		// seconds). What this round freed above the share is not taken back by it.
		need := share - len(keep)
		freed := map[int64]bool{}
		for _, id := range free {
			freed[id] = true
		}
		candidates := make([]int64, 0, len(ids))
		for _, id := range ids {
			if !freed[id] {
				candidates = append(candidates, id)
			}
		}
		for start := 0; need > 0 && start < len(candidates); start += takeChunk {
			chunk := candidates[start:min(start+takeChunk, len(candidates))]
			args := []any{now}
			for _, id := range chunk {
				args = append(args, id)
			}
			args = append(args, need)
			rows, err := tx.query(ctx, `SELECT mailbox_id FROM mailbox_leases
				WHERE (node_id = '' OR expires_at IS NULL OR expires_at <= ?) AND mailbox_id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)
				ORDER BY mailbox_id LIMIT ?`+s.d.skipLocked, args...)
			if err != nil {
				return err
			}
			var take []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				take = append(take, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(take) > 0 {
				args := []any{r.NodeID, now, until}
				for _, id := range take {
					args = append(args, id)
				}
				if _, err := tx.exec(ctx, `UPDATE mailbox_leases SET node_id = ?, generation = generation + 1, acquired_at = ?, expires_at = ?
					WHERE mailbox_id IN (?`+strings.Repeat(", ?", len(take)-1)+`)`, args...); err != nil {
					return err
				}
			}
			need -= len(take)
		}
		var err2 error
		held, err2 = s.leases(ctx, tx, `WHERE node_id = ? ORDER BY mailbox_id`, r.NodeID)
		return err2
	})
	if err != nil {
		return nil, s.wrap(op, err)
	}
	return held, nil
}

// leases reads lease rows.
func (s *Store) leases(ctx context.Context, r runner, where string, args ...any) ([]store.Lease, error) {
	rows, err := r.query(ctx, `SELECT mailbox_id, node_id, generation, acquired_at, expires_at FROM mailbox_leases `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		var l store.Lease
		if err := rows.Scan(&l.MailboxID, &l.NodeID, &l.Generation, tcol(&l.AcquiredAt), tcol(&l.ExpiresAt)); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// ReleaseLeases frees the node's leases and marks it stopping.
func (s *Store) ReleaseLeases(ctx context.Context, nodeID string, now time.Time) (int, error) {
	op := fmt.Sprintf("release the leases of node %s", nodeID)
	var freed int64
	err := s.inTx(ctx, func(tx runner) error {
		res, err := tx.exec(ctx, `UPDATE mailbox_leases SET node_id = '', expires_at = ? WHERE node_id = ?`, s.d.timeArg(now), nodeID)
		if err != nil {
			return err
		}
		if freed, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.exec(ctx, `UPDATE cluster_nodes SET stopping = TRUE WHERE id = ?`, nodeID)
		return err
	})
	return int(freed), s.wrap(op, err)
}

// ListNodes lists the known nodes with their unexpired leases' count.
func (s *Store) ListNodes(ctx context.Context, now time.Time) ([]store.Node, error) {
	const op = "list cluster nodes"
	rows, err := s.r.query(ctx, `SELECT n.id, n.name, n.instance, n.started_at, n.heartbeat_at, n.stopping,
		(SELECT COUNT(*) FROM mailbox_leases l WHERE l.node_id = n.id AND l.expires_at > ?)
		FROM cluster_nodes n ORDER BY n.name, n.started_at, n.id`, s.d.timeArg(now))
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []store.Node
	for rows.Next() {
		var n store.Node
		if err := rows.Scan(&n.ID, &n.Name, &n.Instance, tcol(&n.StartedAt), tcol(&n.HeartbeatAt), &n.Stopping, &n.Leases); err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, n)
	}
	return out, s.wrap(op, rows.Err())
}

// ListLeases lists the held leases by mailbox.
func (s *Store) ListLeases(ctx context.Context) ([]store.Lease, error) {
	l, err := s.leases(ctx, s.r, `WHERE node_id <> '' ORDER BY mailbox_id`)
	return l, s.wrap("list mailbox leases", err)
}

// MarkAckedFenced is MarkAcked that checks f in its transaction.
func (s *Store) MarkAckedFenced(ctx context.Context, f store.Fence, sourceIDs ...string) error {
	if f.IsZero() {
		return s.MarkAcked(ctx, f.MailboxID, sourceIDs...)
	}
	err := s.inTx(ctx, func(tx runner) error {
		if err := s.checkFence(ctx, tx, f); err != nil {
			return err
		}
		return markAcked(ctx, tx, f.MailboxID, sourceIDs)
	})
	return s.wrap(fmt.Sprintf("mark %d messages of mailbox %d acknowledged", len(sourceIDs), f.MailboxID), err)
}

// SetMailboxStatusFenced is SetMailboxStatus that checks f in its transaction.
func (s *Store) SetMailboxStatusFenced(ctx context.Context, f store.Fence, st store.MailboxStatus) error {
	if f.IsZero() {
		return s.SetMailboxStatus(ctx, f.MailboxID, st)
	}
	err := s.inTx(ctx, func(tx runner) error {
		if err := s.checkFence(ctx, tx, f); err != nil {
			return err
		}
		return s.setMailboxStatus(ctx, tx, f.MailboxID, st)
	})
	return s.wrap(fmt.Sprintf("set status of mailbox %d", f.MailboxID), err)
}
