package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// routingVersionKey is the setting bumped by every routing configuration change.
const routingVersionKey = "routing_version"

// bumpRoutingVersion marks the routing configuration changed, in the change's transaction.
func (s *Store) bumpRoutingVersion(ctx context.Context, tx runner) error {
	_, err := tx.exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, routingVersionKey,
		strconv.FormatInt(s.now().UnixNano(), 36))
	if err != nil {
		return fmt.Errorf("bump routing version: %w", err)
	}
	return nil
}

// RoutingVersion returns the current routing configuration version ("" before any change).
func (s *Store) RoutingVersion(ctx context.Context) (string, error) {
	v, err := s.Setting(ctx, routingVersionKey)
	if store.IsNotFound(err) {
		return "", nil
	}
	return v, err
}

const agentSelect = `SELECT u.id, COALESCE(a.skills, '{}'), COALESCE(a.languages, '[]'), COALESCE(a.capacity, 5),
	COALESCE(a.status, 'offline'), a.status_at, a.last_seen_at, a.last_assigned_at, a.updated_at,
	u.username, u.display_name, u.role, u.disabled
	FROM users u LEFT JOIN agents a ON a.user_id = u.id`

func scanAgent(sc scanner) (store.Agent, error) {
	var a store.Agent
	var skills, langs string
	err := sc.Scan(&a.UserID, &skills, &langs, &a.Capacity, &a.Status, tcol(&a.StatusAt), tcol(&a.LastSeenAt),
		tcol(&a.LastAssignedAt), tcol(&a.UpdatedAt), &a.Username, &a.DisplayName, &a.Role, &a.Disabled)
	if err != nil {
		return a, err
	}
	if a.Skills, err = decodeSkills(skills); err != nil {
		return a, err
	}
	a.Languages, err = decodeList(langs)
	return a, err
}

// Agent returns the routing profile of a user.
func (s *Store) Agent(ctx context.Context, userID int64) (store.Agent, error) {
	a, err := scanAgent(s.r.queryRow(ctx, agentSelect+` WHERE u.id = ?`, userID))
	if err == nil {
		var u store.User
		u.ID = userID
		err = s.fillTeams(ctx, []*store.User{&u})
		a.Teams = u.Teams
	}
	if err != nil {
		return store.Agent{}, s.wrap(fmt.Sprintf("agent %d", userID), err)
	}
	return a, nil
}

// ListAgents lists the routing profiles of every user, by username.
func (s *Store) ListAgents(ctx context.Context) ([]store.Agent, error) {
	rows, err := s.r.query(ctx, agentSelect+` ORDER BY u.username, u.id`)
	if err != nil {
		return nil, s.wrap("list agents", err)
	}
	defer rows.Close()
	var list []store.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, s.wrap("list agents", err)
		}
		list = append(list, a)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list agents", err)
	}
	rows.Close()
	users := make([]*store.User, len(list))
	for i := range list {
		users[i] = &store.User{ID: list[i].UserID}
	}
	if err := s.fillTeams(ctx, users); err != nil {
		return nil, s.wrap("list agents", err)
	}
	for i := range list {
		list[i].Teams = users[i].Teams
	}
	return list, nil
}

// ensureAgent creates the agent row of a user when missing.
func (s *Store) ensureAgent(ctx context.Context, tx runner, userID int64, now time.Time) error {
	_, err := tx.exec(ctx, `INSERT INTO agents (user_id, status, status_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id) DO NOTHING`, userID, store.AgentOffline, s.d.timeArg(now), s.d.timeArg(now))
	return err
}

// SaveAgent saves an agent's skills, languages and capacity.
func (s *Store) SaveAgent(ctx context.Context, a store.Agent) error {
	now := s.now()
	err := s.inTx(ctx, func(tx runner) error {
		if err := s.ensureAgent(ctx, tx, a.UserID, now); err != nil {
			return err
		}
		if err := tx.execOne(ctx, `UPDATE agents SET skills = ?, languages = ?, capacity = ?, updated_at = ?
			WHERE user_id = ?`, encodeSkills(a.Skills), encodeList(a.Languages), a.Capacity, s.d.timeArg(now),
			a.UserID); err != nil {
			return err
		}
		return s.bumpRoutingVersion(ctx, tx)
	})
	return s.wrap(fmt.Sprintf("save agent %d", a.UserID), err)
}

// SetAgentStatus sets an agent's status.
func (s *Store) SetAgentStatus(ctx context.Context, userID int64, status string, at time.Time) error {
	err := s.inTx(ctx, func(tx runner) error {
		if err := s.ensureAgent(ctx, tx, userID, at); err != nil {
			return err
		}
		return tx.execOne(ctx, `UPDATE agents SET status = ?, status_at = ?, last_seen_at = ? WHERE user_id = ?`,
			status, s.d.timeArg(at), s.d.timeArg(at), userID)
	})
	return s.wrap(fmt.Sprintf("set status of agent %d", userID), err)
}

// TouchAgent records an agent's last request.
func (s *Store) TouchAgent(ctx context.Context, userID int64, at time.Time) error {
	_, err := s.w.exec(ctx, `UPDATE agents SET last_seen_at = ? WHERE user_id = ?`, s.d.timeArg(at), userID)
	return s.wrap(fmt.Sprintf("touch agent %d", userID), err)
}

// AgentLoads counts the items offered or assigned to each agent, as the capacity check of
// applyChange does: an offered item is its offered_to's load, whoever held it before.
func (s *Store) AgentLoads(ctx context.Context) (map[int64]int, error) {
	rows, err := s.r.query(ctx, `SELECT CASE WHEN state = ? THEN assigned_to ELSE offered_to END AS agent, COUNT(*)
		FROM work_items WHERE state IN (?, ?) GROUP BY agent`, store.StateAssigned, store.StateOffered, store.StateAssigned)
	if err != nil {
		return nil, s.wrap("agent loads", err)
	}
	defer rows.Close()
	loads := map[int64]int{}
	for rows.Next() {
		var id sql.NullInt64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, s.wrap("agent loads", err)
		}
		if id.Valid {
			loads[id.Int64] = n
		}
	}
	return loads, s.wrap("agent loads", rows.Err())
}

// OfferCounts counts the offers waiting for an answer per agent.
func (s *Store) OfferCounts(ctx context.Context) (map[int64]int, error) {
	rows, err := s.r.query(ctx, `SELECT offered_to, COUNT(*) FROM work_items WHERE state = ? AND offered_to IS NOT NULL
		GROUP BY offered_to`, store.StateOffered)
	if err != nil {
		return nil, s.wrap("offer counts", err)
	}
	defer rows.Close()
	counts := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, s.wrap("offer counts", err)
		}
		counts[id] = n
	}
	return counts, s.wrap("offer counts", rows.Err())
}

const routingObjectColumns = `id, kind, name, position, spec, updated_at`

func scanRoutingObject(sc scanner) (store.RoutingObject, error) {
	var o store.RoutingObject
	var spec string
	err := sc.Scan(&o.ID, &o.Kind, &o.Name, &o.Position, &spec, tcol(&o.UpdatedAt))
	o.Spec = []byte(spec)
	return o, err
}

// ListRoutingObjects lists the objects of a kind by position, then name.
func (s *Store) ListRoutingObjects(ctx context.Context, kind string) ([]store.RoutingObject, error) {
	rows, err := s.r.query(ctx, `SELECT `+routingObjectColumns+` FROM routing_objects WHERE kind = ?
		ORDER BY position, name, id`, kind)
	if err != nil {
		return nil, s.wrap("list "+kind+"s", err)
	}
	defer rows.Close()
	var list []store.RoutingObject
	for rows.Next() {
		o, err := scanRoutingObject(rows)
		if err != nil {
			return nil, s.wrap("list "+kind+"s", err)
		}
		list = append(list, o)
	}
	return list, s.wrap("list "+kind+"s", rows.Err())
}

// RoutingObject returns one routing object.
func (s *Store) RoutingObject(ctx context.Context, id int64) (store.RoutingObject, error) {
	o, err := scanRoutingObject(s.r.queryRow(ctx, `SELECT `+routingObjectColumns+` FROM routing_objects WHERE id = ?`, id))
	if err != nil {
		return store.RoutingObject{}, s.wrap(fmt.Sprintf("routing object %d", id), err)
	}
	return o, nil
}

// SaveRoutingObject creates (ID 0) or replaces a routing object; a name in use within the
// kind is store.ErrConflict.
func (s *Store) SaveRoutingObject(ctx context.Context, o store.RoutingObject, audit ...store.AuditEvent) (store.RoutingObject, error) {
	o.UpdatedAt = s.now()
	o.Name = clean(o.Name)
	err := s.inTx(ctx, func(tx runner) error {
		if o.ID == 0 {
			if err := tx.queryRow(ctx, `INSERT INTO routing_objects (kind, name, position, spec, updated_at)
				VALUES (?, ?, ?, ?, ?) RETURNING id`, o.Kind, o.Name, o.Position, clean(string(o.Spec)),
				s.d.timeArg(o.UpdatedAt)).Scan(&o.ID); err != nil {
				return err
			}
		} else if err := tx.execOne(ctx, `UPDATE routing_objects SET name = ?, position = ?, spec = ?, updated_at = ?
			WHERE id = ? AND kind = ?`, o.Name, o.Position, clean(string(o.Spec)), s.d.timeArg(o.UpdatedAt),
			o.ID, o.Kind); err != nil {
			return err
		}
		if err := s.auditIn(ctx, tx, fmt.Sprintf("%s:%d", o.Kind, o.ID), audit); err != nil {
			return err
		}
		return s.bumpRoutingVersion(ctx, tx)
	})
	if err != nil {
		return store.RoutingObject{}, s.wrap(fmt.Sprintf("save %s %q", o.Kind, o.Name), err)
	}
	return o, nil
}

// DeleteRoutingObject deletes a routing object.
func (s *Store) DeleteRoutingObject(ctx context.Context, id int64, audit ...store.AuditEvent) error {
	err := s.inTx(ctx, func(tx runner) error {
		if err := tx.execOne(ctx, `DELETE FROM routing_objects WHERE id = ?`, id); err != nil {
			return err
		}
		if err := s.auditIn(ctx, tx, fmt.Sprintf("routing:%d", id), audit); err != nil {
			return err
		}
		return s.bumpRoutingVersion(ctx, tx)
	})
	return s.wrap(fmt.Sprintf("delete routing object %d", id), err)
}

// SetQueueSpec saves a queue's name and routing settings.
func (s *Store) SetQueueSpec(ctx context.Context, id int64, name string, spec []byte, audit ...store.AuditEvent) error {
	err := s.inTx(ctx, func(tx runner) error {
		if err := tx.execOne(ctx, `UPDATE queues SET name = ?, spec = ?, updated_at = ? WHERE id = ?`,
			clean(name), clean(string(spec)), s.d.timeArg(s.now()), id); err != nil {
			return err
		}
		if err := s.auditIn(ctx, tx, fmt.Sprintf("queue:%d", id), audit); err != nil {
			return err
		}
		return s.bumpRoutingVersion(ctx, tx)
	})
	return s.wrap(fmt.Sprintf("save queue %d", id), err)
}

const routingItemColumns = `id, state, queue_id, queued_at, received_at, priority_adjust, skills, language,
	schema_id, sla_policy_id, sla_due_at, assigned_to, offered_to, offer_expires_at, declined_by,
	preferred_agent, preferred_until, overflowed, updated_at`

func scanRoutingItem(sc scanner) (store.RoutingItem, error) {
	var it store.RoutingItem
	var skills, declined string
	err := sc.Scan(&it.ID, &it.State, idCol{&it.QueueID}, tcol(&it.QueuedAt), tcol(&it.ReceivedAt),
		&it.PriorityAdjust, &skills, &it.Language, idCol{&it.SchemaID}, idCol{&it.SLAPolicyID},
		tcol(&it.SLADueAt), idCol{&it.AssignedTo}, idCol{&it.OfferedTo}, tcol(&it.OfferExpiresAt), &declined,
		idCol{&it.PreferredAgent}, tcol(&it.PreferredUntil), &it.Overflowed, tcol(&it.UpdatedAt))
	if err != nil {
		return it, err
	}
	if it.Skills, err = decodeSkills(skills); err != nil {
		return it, err
	}
	if it.DeclinedBy, err = decodeIDs(declined); err != nil {
		return it, err
	}
	if it.QueuedAt.IsZero() {
		it.QueuedAt = it.ReceivedAt
	}
	return it, nil
}

func (s *Store) routingItems(ctx context.Context, op, where string, args ...any) ([]store.RoutingItem, error) {
	rows, err := s.r.query(ctx, `SELECT `+routingItemColumns+` FROM work_items WHERE `+where, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var list []store.RoutingItem
	for rows.Next() {
		it, err := scanRoutingItem(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		list = append(list, it)
	}
	return list, s.wrap(op, rows.Err())
}

// RoutingItems lists items for the assignment engine.
func (s *Store) RoutingItems(ctx context.Context, since time.Time) ([]store.RoutingItem, error) {
	if since.IsZero() {
		// Literal states, so that the partial index work_items_routing serves the query.
		return s.routingItems(ctx, "routing items", `state IN ('queued', 'offered') ORDER BY id`)
	}
	return s.routingItems(ctx, "routing items", `updated_at >= ? ORDER BY updated_at, id`, s.d.timeArg(since))
}

// RoutingItem returns one item as the engine sees it.
func (s *Store) RoutingItem(ctx context.Context, id int64) (store.RoutingItem, error) {
	list, err := s.routingItems(ctx, fmt.Sprintf("routing item %d", id), `id = ?`, id)
	if err != nil {
		return store.RoutingItem{}, err
	}
	if len(list) == 0 {
		return store.RoutingItem{}, s.wrap(fmt.Sprintf("routing item %d", id), store.ErrNotFound)
	}
	return list[0], nil
}

// ExpiredOffers lists offered items whose offer expired at now.
func (s *Store) ExpiredOffers(ctx context.Context, now time.Time) ([]store.RoutingItem, error) {
	return s.routingItems(ctx, "expired offers", `state = ? AND offer_expires_at <= ? ORDER BY offer_expires_at, id`,
		store.StateOffered, s.d.timeArg(now))
}

// ApplyChanges applies each change conditionally, all in one transaction.
func (s *Store) ApplyChanges(ctx context.Context, changes []store.Change) ([]store.ChangeResult, error) {
	results := make([]store.ChangeResult, len(changes))
	// Lock agents in one order on engines with row locks, so that two nodes' batches
	// cannot wait on each other.
	order := make([]int, len(changes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return int(changes[a].CapacityOf - changes[b].CapacityOf)
	})
	err := s.inTx(ctx, func(tx runner) error {
		now := s.now()
		for _, i := range order {
			// A batch takes tens of milliseconds of CPU on SQLite: let goroutines waiting
			// for a processor (an agent's pull) run between changes instead of after the
			// scheduler's 10 ms preemption.
			runtime.Gosched()
			err := s.applyChange(ctx, tx, changes[i], now)
			if errors.Is(err, store.ErrStateChanged) || errors.Is(err, store.ErrCapacity) {
				results[i].Err = err
				continue
			}
			if err != nil {
				return fmt.Errorf("change work item %d: %w", changes[i].WorkItemID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap("apply work item changes", err)
	}
	return results, nil
}

func (s *Store) applyChange(ctx context.Context, tx runner, c store.Change, now time.Time) error {
	at := c.Event.At
	if at.IsZero() {
		at = now
	}
	if c.CapacityOf != 0 {
		// The agent's load, counted as a claim must count it; on PostgreSQL the same
		// statement locks the agent's row, so that two nodes cannot both fill the last slot.
		const load = `(SELECT COUNT(*) FROM work_items WHERE assigned_to = ? AND state = 'assigned')
			+ (SELECT COUNT(*) FROM work_items WHERE offered_to = ? AND state = 'offered' AND id <> ?)`
		args := []any{c.CapacityOf, c.CapacityOf, c.WorkItemID}
		var n int
		var err error
		if s.d.forUpdate != "" {
			q := `SELECT ` + load + ` FROM agents WHERE user_id = ?` + s.d.forUpdate
			err = tx.queryRow(ctx, q, append(args, c.CapacityOf)...).Scan(&n)
			if errors.Is(err, sql.ErrNoRows) {
				if err := s.ensureAgent(ctx, tx, c.CapacityOf, now); err != nil {
					return err
				}
				err = tx.queryRow(ctx, q, append(args, c.CapacityOf)...).Scan(&n)
			}
		} else {
			err = tx.queryRow(ctx, `SELECT `+load, args...).Scan(&n)
		}
		if err != nil {
			return fmt.Errorf("load of agent %d: %w", c.CapacityOf, err)
		}
		if n >= c.Capacity {
			return store.ErrCapacity
		}
	}
	sets := []string{`state = ?`, `updated_at = ?`}
	args := []any{c.To, s.d.timeArg(now)}
	set := func(col string, v any) {
		sets = append(sets, col+` = ?`)
		args = append(args, v)
	}
	optID := func(p *int64) any {
		if *p == 0 {
			return nil
		}
		return *p
	}
	if c.AssignedTo != nil {
		set("assigned_to", optID(c.AssignedTo))
		if *c.AssignedTo != 0 && c.To == store.StateAssigned {
			set("assigned_at", s.d.timeArg(at))
		}
	}
	if c.OfferedTo != nil {
		set("offered_to", optID(c.OfferedTo))
	}
	if c.OfferExpiresAt != nil {
		set("offer_expires_at", s.d.timeArg(*c.OfferExpiresAt))
	}
	if c.QueueID != nil {
		set("queue_id", optID(c.QueueID))
	}
	if c.QueuedAt != nil {
		set("queued_at", s.d.timeArg(*c.QueuedAt))
	}
	if c.SLADueAt != nil {
		set("sla_due_at", s.d.timeArg(*c.SLADueAt))
		set("sla_risk_noted", false)
		set("sla_breach_noted", false)
	}
	if c.SLARiskAt != nil {
		set("sla_risk_at", s.d.timeArg(*c.SLARiskAt))
	}
	if c.SLARemaining != nil {
		if *c.SLARemaining == 0 {
			set("sla_remaining_ms", nil)
		} else {
			set("sla_remaining_ms", c.SLARemaining.Milliseconds())
		}
	}
	if c.DeclinedBy != nil {
		set("declined_by", encodeIDs(c.DeclinedBy))
	}
	if c.Flag != nil {
		set("flag", clean(*c.Flag))
	}
	if c.PreferredAgent != nil {
		set("preferred_agent", optID(c.PreferredAgent))
	}
	if c.PreferredUntil != nil {
		set("preferred_until", s.d.timeArg(*c.PreferredUntil))
	}
	if c.Overflowed != nil {
		set("overflowed", *c.Overflowed)
	}
	if c.PriorityAdjust != nil {
		set("priority_adjust", *c.PriorityAdjust)
	}
	if c.Reason != nil {
		set("state_reason", clean(*c.Reason))
	}
	switch c.To {
	case store.StateDone, store.StateCancelled:
		set("done_at", s.d.timeArg(at))
	}
	where := `id = ?`
	whereArgs := len(args)
	args = append(args, c.WorkItemID)
	if len(c.From) > 0 {
		where += ` AND state IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(c.From)), ", ") + `)`
		for _, f := range c.From {
			args = append(args, f)
		}
	}
	if c.IfAgent != 0 {
		where += ` AND (assigned_to = ? OR offered_to = ?)`
		args = append(args, c.IfAgent, c.IfAgent)
	}
	whereArgs = len(args) - whereArgs
	// Read the old state with the row locked (PostgreSQL; SQLite has one writer). A claim
	// skips a row another node holds: that node is assigning it, so it is not ours to take.
	lock := s.d.forUpdate
	if c.CapacityOf != 0 {
		lock = s.d.skipLocked
	}
	ev := c.Event
	ev.WorkItemID = c.WorkItemID
	ev.At = at
	ev.To = c.To
	if ev.Kind == "" {
		ev.Kind = "state"
	}
	ev.Trace = c.Trace
	if s.d.numbered {
		return s.applyChangePostgres(ctx, tx, c, ev, sets, args, where, lock, now)
	}
	if err := tx.queryRow(ctx, `SELECT state FROM work_items WHERE `+where+lock, args[len(args)-whereArgs:]...).Scan(&ev.From); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrStateChanged
		}
		return err
	}
	if _, err := tx.exec(ctx, `UPDATE work_items SET `+strings.Join(sets, ", ")+` WHERE id = ?`,
		append(args[:len(args)-whereArgs], c.WorkItemID)...); err != nil {
		return err
	}
	if err := s.insertEvent(ctx, tx, ev); err != nil {
		return err
	}
	if c.AgentAssigned != 0 {
		// An agent whose profile was never saved has no row yet: without one the
		// assignment would not be recorded, and the agent would look idle for ever.
		// One statement: the row is created with the default profile when missing.
		if _, err := tx.exec(ctx, agentAssignedSQL+` VALUES (?, ?, ?, ?, ?)`+agentAssignedConflict,
			c.AgentAssigned, store.AgentOffline, s.d.timeArg(now), s.d.timeArg(now), s.d.timeArg(at)); err != nil {
			return fmt.Errorf("record assignment of agent %d: %w", c.AgentAssigned, err)
		}
	}
	return nil
}

// The statement that records an agent's last assignment (and creates their row).
const (
	agentAssignedSQL      = `INSERT INTO agents (user_id, status, status_at, updated_at, last_assigned_at)`
	agentAssignedConflict = ` ON CONFLICT (user_id) DO UPDATE SET last_assigned_at = excluded.last_assigned_at`
)

// applyChangePostgres writes a change in one round trip: the locked row's old state, the
// update, the event and the agent's last assignment, as one statement of data-modifying
// common table expressions (each part runs only when the row was there to change).
func (s *Store) applyChangePostgres(ctx context.Context, tx runner, c store.Change, ev store.Event, sets []string, args []any,
	where, lock string, now time.Time) error {
	actor := ev.Actor
	if actor == "" {
		actor = "system"
	}
	var trace any
	if len(ev.Trace) > 0 {
		trace = clean(string(ev.Trace))
	}
	q := `WITH old AS (SELECT id, state FROM work_items WHERE ` + where + lock + `),
		upd AS (UPDATE work_items SET ` + strings.Join(sets, ", ") + ` FROM old WHERE work_items.id = old.id
			RETURNING old.state AS from_state),
		ev AS (INSERT INTO work_item_events (work_item_id, at, actor_id, actor, kind, from_state, to_state, agent_id,
			queue_id, reason, trace) SELECT ?, ?, ?, ?, ?, upd.from_state, ?, ?, ?, ?, ? FROM upd RETURNING from_state)`
	// The placeholders are numbered in order of appearance: the old row's WHERE comes
	// first, then the SET values, then the event's.
	n := len(args)
	whereArgs := args[n-countMarks(where):]
	setArgs := args[:n-countMarks(where)]
	all := append(append(slices.Clone(whereArgs), setArgs...), ev.WorkItemID, s.d.timeArg(ev.At), nullID(ev.ActorID),
		clean(actor), ev.Kind, ev.To, nullID(ev.AgentID), nullID(ev.QueueID), clean(ev.Reason), trace)
	if c.AgentAssigned != 0 {
		q += `, ag AS (` + agentAssignedSQL + ` SELECT ?, ?, ?, ?, ? FROM upd` + agentAssignedConflict + `)`
		all = append(all, c.AgentAssigned, store.AgentOffline, s.d.timeArg(now), s.d.timeArg(now), s.d.timeArg(ev.At))
	}
	q += ` SELECT from_state FROM ev`
	var from string
	err := tx.queryRow(ctx, q, all...).Scan(&from)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrStateChanged
	}
	return err
}

// countMarks counts the ? placeholders of a fragment of SQL.
func countMarks(q string) int { return strings.Count(q, "?") }

func (s *Store) insertEvent(ctx context.Context, tx runner, e store.Event) error {
	actor := e.Actor
	if actor == "" {
		actor = "system"
	}
	var trace any
	if len(e.Trace) > 0 {
		trace = clean(string(e.Trace))
	}
	_, err := tx.exec(ctx, `INSERT INTO work_item_events (work_item_id, at, actor_id, actor, kind, from_state,
		to_state, agent_id, queue_id, reason, trace) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.WorkItemID, s.d.timeArg(e.At), nullID(e.ActorID), clean(actor), e.Kind, e.From, e.To,
		nullID(e.AgentID), nullID(e.QueueID), clean(e.Reason), trace)
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

// AddEvent records an event that is not a state change.
func (s *Store) AddEvent(ctx context.Context, e store.Event) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	return s.wrap("add work item event", s.insertEvent(ctx, s.w, e))
}

const eventColumns = `id, work_item_id, at, actor_id, actor, kind, from_state, to_state, agent_id, queue_id, reason`

func scanEvent(sc scanner) (store.Event, error) {
	var e store.Event
	err := sc.Scan(&e.ID, &e.WorkItemID, tcol(&e.At), idCol{&e.ActorID}, &e.Actor, &e.Kind, &e.From, &e.To,
		idCol{&e.AgentID}, idCol{&e.QueueID}, &e.Reason)
	return e, err
}

// Events lists a work item's events, oldest first.
func (s *Store) Events(ctx context.Context, workItemID int64) ([]store.Event, error) {
	rows, err := s.r.query(ctx, `SELECT `+eventColumns+` FROM work_item_events WHERE work_item_id = ? ORDER BY id`, workItemID)
	if err != nil {
		return nil, s.wrap("work item events", err)
	}
	defer rows.Close()
	var list []store.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, s.wrap("work item events", err)
		}
		list = append(list, e)
	}
	return list, s.wrap("work item events", rows.Err())
}

// Traces lists a work item's decision traces, oldest first.
func (s *Store) Traces(ctx context.Context, workItemID int64) ([]store.Trace, error) {
	rows, err := s.r.query(ctx, `SELECT id, work_item_id, at, agent_id, trace FROM work_item_events
		WHERE work_item_id = ? AND trace IS NOT NULL ORDER BY id`, workItemID)
	if err != nil {
		return nil, s.wrap("decision traces", err)
	}
	defer rows.Close()
	var list []store.Trace
	for rows.Next() {
		var t store.Trace
		var js string
		if err := rows.Scan(&t.ID, &t.WorkItemID, tcol(&t.At), idCol{&t.AgentID}, &js); err != nil {
			return nil, s.wrap("decision traces", err)
		}
		t.JSON = []byte(js)
		list = append(list, t)
	}
	return list, s.wrap("decision traces", rows.Err())
}

// openStates are the states of items that still need work.
var openStates = []string{store.StateQueued, store.StateOffered, store.StateAssigned, store.StatePending, store.StateOnHold}

// QueueDepths counts open items per queue at now.
func (s *Store) QueueDepths(ctx context.Context, now time.Time) ([]store.QueueDepth, error) {
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(openStates)), ", ")
	args := []any{}
	for _, st := range openStates {
		args = append(args, st)
	}
	rows, err := s.r.query(ctx, `SELECT queue_id, state, COUNT(*), MIN(COALESCE(queued_at, received_at)) FROM work_items
		WHERE state IN (`+marks+`) AND queue_id IS NOT NULL GROUP BY queue_id, state ORDER BY queue_id`, args...)
	if err != nil {
		return nil, s.wrap("queue depths", err)
	}
	byQueue := map[int64]*store.QueueDepth{}
	var order []int64
	get := func(id int64) *store.QueueDepth {
		d := byQueue[id]
		if d == nil {
			d = &store.QueueDepth{QueueID: id, ByState: map[string]int{}}
			byQueue[id] = d
			order = append(order, id)
		}
		return d
	}
	for rows.Next() {
		var q int64
		var st string
		var n int
		var oldest time.Time
		if err := rows.Scan(&q, &st, &n, tcol(&oldest)); err != nil {
			rows.Close()
			return nil, s.wrap("queue depths", err)
		}
		d := get(q)
		d.ByState[st] = n
		if st == store.StateQueued {
			d.OldestAt = oldest
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, s.wrap("queue depths", err)
	}
	// SLA figures of items still waiting for an answer (pending ones are paused).
	running := []any{store.StateQueued, store.StateOffered, store.StateAssigned, store.StateOnHold}
	rows, err = s.r.query(ctx, `SELECT queue_id,
		SUM(CASE WHEN sla_due_at <= ? THEN 1 ELSE 0 END),
		SUM(CASE WHEN sla_due_at > ? AND sla_risk_at <= ? THEN 1 ELSE 0 END)
		FROM work_items WHERE state IN (?, ?, ?, ?) AND queue_id IS NOT NULL AND sla_due_at IS NOT NULL
		GROUP BY queue_id`, append([]any{s.d.timeArg(now), s.d.timeArg(now), s.d.timeArg(now)}, running...)...)
	if err != nil {
		return nil, s.wrap("queue SLA figures", err)
	}
	defer rows.Close()
	for rows.Next() {
		var q int64
		var breached, risk sql.NullInt64
		if err := rows.Scan(&q, &breached, &risk); err != nil {
			return nil, s.wrap("queue SLA figures", err)
		}
		d := get(q)
		d.Breached, d.AtRisk = int(breached.Int64), int(risk.Int64)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("queue SLA figures", err)
	}
	list := make([]store.QueueDepth, 0, len(order))
	for _, id := range order {
		list = append(list, *byQueue[id])
	}
	return list, nil
}

// HourlyStats counts arrivals and first responses per hour from since (UTC hours).
func (s *Store) HourlyStats(ctx context.Context, since time.Time) ([]store.HourStats, error) {
	since = since.UTC().Truncate(time.Hour)
	hours := map[int64]*store.HourStats{}
	bucket := func(t time.Time) *store.HourStats {
		h := t.UTC().Truncate(time.Hour)
		b := hours[h.Unix()]
		if b == nil {
			b = &store.HourStats{Hour: h}
			hours[h.Unix()] = b
		}
		return b
	}
	rows, err := s.r.query(ctx, `SELECT received_at, first_response_at, sla_first_due_at FROM work_items
		WHERE received_at >= ? OR first_response_at >= ?`, s.d.timeArg(since), s.d.timeArg(since))
	if err != nil {
		return nil, s.wrap("hourly figures", err)
	}
	defer rows.Close()
	for rows.Next() {
		var recv, resp, due time.Time
		if err := rows.Scan(tcol(&recv), tcol(&resp), tcol(&due)); err != nil {
			return nil, s.wrap("hourly figures", err)
		}
		if !recv.Before(since) {
			bucket(recv).Arrivals++
		}
		if !resp.IsZero() && !resp.Before(since) {
			b := bucket(resp)
			b.Responded++
			if due.IsZero() || !resp.After(due) {
				b.ResponseMet++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("hourly figures", err)
	}
	var list []store.HourStats
	for _, b := range hours {
		list = append(list, *b)
	}
	slices.SortFunc(list, func(a, b store.HourStats) int { return a.Hour.Compare(b.Hour) })
	return list, nil
}

// History lists the events in [from, to) with their items' figures, oldest first.
func (s *Store) History(ctx context.Context, from, to time.Time) ([]store.HistoryRow, error) {
	rows, err := s.r.query(ctx, `SELECT e.id, e.work_item_id, e.at, e.actor_id, e.actor, e.kind, e.from_state,
		e.to_state, e.agent_id, e.queue_id, e.reason, m.subject, COALESCE(q.name, ''), w.received_at,
		w.first_response_at, w.sla_first_due_at, w.done_at, w.assigned_at
		FROM work_item_events e
		JOIN work_items w ON w.id = e.work_item_id
		JOIN messages m ON m.id = w.message_id
		LEFT JOIN queues q ON q.id = w.queue_id
		WHERE e.at >= ? AND e.at < ? ORDER BY e.at, e.id`, s.d.timeArg(from), s.d.timeArg(to))
	if err != nil {
		return nil, s.wrap("history", err)
	}
	defer rows.Close()
	var list []store.HistoryRow
	for rows.Next() {
		var h store.HistoryRow
		e := &h.Event
		if err := rows.Scan(&e.ID, &e.WorkItemID, tcol(&e.At), idCol{&e.ActorID}, &e.Actor, &e.Kind, &e.From, &e.To,
			idCol{&e.AgentID}, idCol{&e.QueueID}, &e.Reason, &h.Subject, &h.QueueName, tcol(&h.ReceivedAt),
			tcol(&h.FirstResponseAt), tcol(&h.FirstDueAt), tcol(&h.DoneAt), tcol(&h.AssignedAt)); err != nil {
			return nil, s.wrap("history", err)
		}
		list = append(list, h)
	}
	return list, s.wrap("history", rows.Err())
}

// NoteSLA records the SLA instants that passed at now, once each.
func (s *Store) NoteSLA(ctx context.Context, now time.Time) ([]store.Event, error) {
	var out []store.Event
	err := s.inTx(ctx, func(tx runner) error {
		for _, k := range []struct{ kind, col, flag, why string }{
			{"sla_breach", "sla_due_at", "sla_breach_noted", "the SLA target passed without an answer"},
			{"sla_at_risk", "sla_risk_at", "sla_risk_noted", "the SLA is at risk"},
		} {
			// The partial index of the instants not recorded yet serves this (its predicate,
			// NOT flag, is in the query as it is in the index).
			rows, err := tx.query(ctx, `SELECT id, state, queue_id, assigned_to FROM work_items
				WHERE `+k.col+` <= ? AND NOT `+k.flag+` ORDER BY `+k.col+` LIMIT 1000`+s.d.skipLocked, s.d.timeArg(now))
			if err != nil {
				return err
			}
			var batch, quiet []store.Event
			for rows.Next() {
				e := store.Event{At: now, Kind: k.kind, Reason: k.why}
				if err := rows.Scan(&e.WorkItemID, &e.From, idCol{&e.QueueID}, idCol{&e.AgentID}); err != nil {
					rows.Close()
					return err
				}
				e.To = e.From
				switch e.From {
				case store.StateQueued, store.StateOffered, store.StateAssigned, store.StateOnHold:
					batch = append(batch, e)
				default: // no longer waiting for an answer: marked, without an event
					quiet = append(quiet, e)
				}
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return err
			}
			q := `UPDATE work_items SET ` + k.flag + ` = TRUE WHERE id = ?`
			if k.kind == "sla_breach" {
				q = `UPDATE work_items SET sla_breach_noted = TRUE, sla_risk_noted = TRUE WHERE id = ?`
			}
			for _, e := range append(slices.Clone(batch), quiet...) {
				if _, err := tx.exec(ctx, q, e.WorkItemID); err != nil {
					return err
				}
			}
			for _, e := range batch {
				if err := s.insertEvent(ctx, tx, e); err != nil {
					return err
				}
			}
			out = append(out, batch...)
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap("note SLA events", err)
	}
	return out, nil
}

// auditIn writes audit events in the change's transaction; an event without an Object is
// about object, one without a time is now.
func (s *Store) auditIn(ctx context.Context, tx runner, object string, events []store.AuditEvent) error {
	for _, e := range events {
		if e.Object == "" {
			e.Object = object
		}
		if e.At.IsZero() {
			e.At = s.now()
		}
		if err := s.addAudit(ctx, tx, e); err != nil {
			return fmt.Errorf("record audit event %s: %w", e.Action, err)
		}
	}
	return nil
}
