package sqlstore

import (
	"context"
	"fmt"

	"github.com/postroom/postroom/internal/store"
)

const queueColumns = `id, name, enabled, created_at, spec`

func scanQueue(sc scanner) (store.Queue, error) {
	var q store.Queue
	var spec string
	err := sc.Scan(&q.ID, &q.Name, &q.Enabled, tcol(&q.CreatedAt), &spec)
	if spec != "" && spec != "{}" {
		q.Spec = []byte(spec)
	}
	return q, err
}

// EnsureDefaultQueue returns the queue named store.DefaultQueue, creating it (enabled)
// when it is missing. Nodes that start together may call it at once: the insert does
// nothing when the name exists, so exactly one queue is created.
func (s *Store) EnsureDefaultQueue(ctx context.Context) (store.Queue, error) {
	var q store.Queue
	err := s.inTx(ctx, func(tx runner) error {
		_, err := tx.exec(ctx, `INSERT INTO queues (name, enabled, created_at) VALUES (?, TRUE, ?)
			ON CONFLICT (name) DO NOTHING`, store.DefaultQueue, s.d.timeArg(s.now()))
		if err != nil {
			return err
		}
		q, err = scanQueue(tx.queryRow(ctx, `SELECT `+queueColumns+` FROM queues WHERE name = ?`, store.DefaultQueue))
		return err
	})
	if err != nil {
		return store.Queue{}, s.wrap("ensure the default queue", err)
	}
	return q, nil
}

// CreateQueue stores a new queue; a name in use is store.ErrConflict.
func (s *Store) CreateQueue(ctx context.Context, q store.Queue) (store.Queue, error) {
	q.CreatedAt = s.now()
	err := s.w.queryRow(ctx, `INSERT INTO queues (name, enabled, created_at) VALUES (?, ?, ?) RETURNING id`,
		clean(q.Name), q.Enabled, s.d.timeArg(q.CreatedAt)).Scan(&q.ID)
	if err != nil {
		return store.Queue{}, s.wrap(fmt.Sprintf("create queue %q", q.Name), err)
	}
	q.Name = clean(q.Name)
	return q, nil
}

// Queue returns the queue with id.
func (s *Store) Queue(ctx context.Context, id int64) (store.Queue, error) {
	q, err := scanQueue(s.r.queryRow(ctx, `SELECT `+queueColumns+` FROM queues WHERE id = ?`, id))
	if err != nil {
		return store.Queue{}, s.wrap(fmt.Sprintf("queue %d", id), err)
	}
	return q, nil
}

// ListQueues returns every queue, ordered by name.
func (s *Store) ListQueues(ctx context.Context) ([]store.Queue, error) {
	rows, err := s.r.query(ctx, `SELECT `+queueColumns+` FROM queues ORDER BY name, id`)
	if err != nil {
		return nil, s.wrap("list queues", err)
	}
	defer rows.Close()
	var list []store.Queue
	for rows.Next() {
		q, err := scanQueue(rows)
		if err != nil {
			return nil, s.wrap("list queues", err)
		}
		list = append(list, q)
	}
	return list, s.wrap("list queues", rows.Err())
}

// SetQueueEnabled enables or disables a queue and, in the same transaction, every mailbox
// assigned to it. The mailboxes whose flag changes get a new UpdatedAt, so that their
// ingest loops start or stop.
func (s *Store) SetQueueEnabled(ctx context.Context, id int64, enabled bool) error {
	op := fmt.Sprintf("set enabled of queue %d to %t", id, enabled)
	err := s.inTx(ctx, func(tx runner) error {
		if err := tx.execOne(ctx, `UPDATE queues SET enabled = ? WHERE id = ?`, enabled, id); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `UPDATE mailboxes SET enabled = ?, updated_at = ?
			WHERE queue_id = ? AND deleted_at IS NULL AND enabled <> ?`,
			enabled, s.d.timeArg(s.now()), id, enabled)
		return err
	})
	return s.wrap(op, err)
}
