package sqlstore

import (
	"context"
	"fmt"
	"strings"

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

// maxAuditQuery bounds the free text of an audit search: a longer one is no one's search.
const maxAuditQuery = 200

// auditWhere is the WHERE clause (with its arguments) of f.
func (s *Store) auditWhere(f store.AuditFilter) (string, []any) {
	var conds []string
	var args []any
	if q := strings.ToLower(clean(f.Query)); q != "" {
		if len(q) > maxAuditQuery {
			q = q[:maxAuditQuery]
		}
		pat := likeEscape(q)
		conds = append(conds, `(lower(action) LIKE ? ESCAPE '\' OR lower(actor) LIKE ? ESCAPE '\' OR lower(object) LIKE ? ESCAPE '\'
			OR lower(old_value) LIKE ? ESCAPE '\' OR lower(new_value) LIKE ? ESCAPE '\')`)
		args = append(args, pat, pat, pat, pat, pat)
	}
	for _, c := range []struct{ col, v string }{{"action", f.Action}, {"actor", f.Actor}, {"object", f.Object}} {
		if c.v != "" {
			conds = append(conds, c.col+` = ?`)
			args = append(args, clean(c.v))
		}
	}
	if !f.From.IsZero() {
		conds = append(conds, `at >= ?`)
		args = append(args, s.d.timeArg(f.From))
	}
	if !f.To.IsZero() {
		conds = append(conds, `at < ?`)
		args = append(args, s.d.timeArg(f.To))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// SearchAudit lists the audit events matching f, newest first.
func (s *Store) SearchAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	where, args := s.auditWhere(f)
	args = append(args, limit, max(f.Offset, 0))
	return s.listAudit(ctx, "search audit events", `SELECT id, at, actor, action, object, old_value,
		new_value FROM audit_events`+where+` ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`, args...)
}

// CountAudit counts the audit events matching f.
func (s *Store) CountAudit(ctx context.Context, f store.AuditFilter) (int, error) {
	where, args := s.auditWhere(f)
	var n int
	err := s.r.queryRow(ctx, `SELECT COUNT(*) FROM audit_events`+where, args...).Scan(&n)
	return n, s.wrap("count audit events", err)
}
