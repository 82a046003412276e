package sqlstore

import (
	"context"
	"fmt"

	"github.com/postroom/postroom/internal/store"
)

// defaultAuditLimit is how many audit events ListAudit returns when asked for none.
const defaultAuditLimit = 100

// AddAudit records an audit event; a zero At is now.
func (s *Store) AddAudit(ctx context.Context, e store.AuditEvent) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	return s.wrap("add audit event", s.addAudit(ctx, s.w, e))
}

func (s *Store) addAudit(ctx context.Context, r runner, e store.AuditEvent) error {
	_, err := r.exec(ctx, `INSERT INTO audit_events (at, actor, action, object, old_value, new_value)
		VALUES (?, ?, ?, ?, ?, ?)`,
		s.d.timeArg(e.At), clean(e.Actor), clean(e.Action), clean(e.Object), clean(e.Old), clean(e.New))
	return err
}

// ListAudit returns the latest audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	return s.listAudit(ctx, "list audit events", `SELECT id, at, actor, action, object, old_value,
		new_value FROM audit_events ORDER BY at DESC, id DESC LIMIT ?`, limit)
}

// ListAuditFor returns the latest audit events of one object ("mailbox:3"), newest first.
func (s *Store) ListAuditFor(ctx context.Context, object string, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	return s.listAudit(ctx, fmt.Sprintf("list audit events of %q", object), `SELECT id, at, actor,
		action, object, old_value, new_value FROM audit_events WHERE object = ?
		ORDER BY at DESC, id DESC LIMIT ?`, object, limit)
}

func (s *Store) listAudit(ctx context.Context, op, query string, args ...any) ([]store.AuditEvent, error) {
	rows, err := s.r.query(ctx, query, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var list []store.AuditEvent
	for rows.Next() {
		var e store.AuditEvent
		if err := rows.Scan(&e.ID, tcol(&e.At), &e.Actor, &e.Action, &e.Object, &e.Old, &e.New); err != nil {
			return nil, s.wrap(op, err)
		}
		list = append(list, e)
	}
	return list, s.wrap(op, rows.Err())
}
