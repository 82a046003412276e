-- postroom schema, version 7 (SQLite): workload distribution. Users get an email, a
-- disabled flag and teams; agents their skills, languages, capacity and status; queues
-- their routing settings (spec: JSON of routing.QueueSettings); calendars, schemas, SLA
-- policies and classification rules are routing objects (spec: the object's JSON). Work
-- items get the routing fields, the SLA clock and the offer; every state change is a
-- work_item_events row, and the row of an offer or assignment keeps its decision trace.
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT '';

CREATE TABLE teams (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

CREATE TABLE agents (
    user_id          INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    skills           TEXT    NOT NULL DEFAULT '{}',
    languages        TEXT    NOT NULL DEFAULT '[]',
    capacity         INTEGER NOT NULL DEFAULT 5,
    status           TEXT    NOT NULL DEFAULT 'offline',
    status_at        INTEGER NOT NULL,
    last_seen_at     INTEGER,
    last_assigned_at INTEGER,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE routing_objects (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    position   INTEGER NOT NULL DEFAULT 0,
    spec       TEXT    NOT NULL DEFAULT '{}',
    updated_at INTEGER NOT NULL,
    UNIQUE (kind, name)
);

ALTER TABLE queues ADD COLUMN spec TEXT NOT NULL DEFAULT '{}';
ALTER TABLE queues ADD COLUMN updated_at INTEGER;

ALTER TABLE work_items ADD COLUMN queue_id INTEGER REFERENCES queues (id) ON DELETE SET NULL;
ALTER TABLE work_items ADD COLUMN category TEXT NOT NULL DEFAULT '';
ALTER TABLE work_items ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE work_items ADD COLUMN priority_adjust INTEGER NOT NULL DEFAULT 0;
ALTER TABLE work_items ADD COLUMN skills TEXT NOT NULL DEFAULT '{}';
ALTER TABLE work_items ADD COLUMN language TEXT NOT NULL DEFAULT '';
ALTER TABLE work_items ADD COLUMN schema_id INTEGER;
ALTER TABLE work_items ADD COLUMN sla_policy_id INTEGER;
ALTER TABLE work_items ADD COLUMN queued_at INTEGER;
ALTER TABLE work_items ADD COLUMN sla_due_at INTEGER;
ALTER TABLE work_items ADD COLUMN sla_risk_at INTEGER;
ALTER TABLE work_items ADD COLUMN sla_first_due_at INTEGER;
ALTER TABLE work_items ADD COLUMN sla_remaining_ms INTEGER;
ALTER TABLE work_items ADD COLUMN first_response_at INTEGER;
ALTER TABLE work_items ADD COLUMN offered_to INTEGER REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE work_items ADD COLUMN offer_expires_at INTEGER;
ALTER TABLE work_items ADD COLUMN declined_by TEXT NOT NULL DEFAULT '[]';
ALTER TABLE work_items ADD COLUMN flag TEXT NOT NULL DEFAULT '';
ALTER TABLE work_items ADD COLUMN preferred_agent INTEGER REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE work_items ADD COLUMN preferred_until INTEGER;
ALTER TABLE work_items ADD COLUMN overflowed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE work_items ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE work_items ADD COLUMN assigned_at INTEGER;
ALTER TABLE work_items ADD COLUMN done_at INTEGER;

-- The states before routing: new and open items wait in the queue of their mailbox,
-- replied and closed ones are done.
UPDATE work_items SET queue_id = (SELECT queue_id FROM mailboxes WHERE mailboxes.id = work_items.mailbox_id);
UPDATE work_items SET state = 'queued', queued_at = received_at WHERE state IN ('new', 'open');
UPDATE work_items SET state = 'done', done_at = updated_at WHERE state IN ('replied', 'closed');
UPDATE work_items SET assigned_to = NULL WHERE state = 'queued';

-- Partial indexes: an assignment, the most frequent write, then moves fewer index entries.
CREATE INDEX work_items_routing ON work_items (state, queue_id, queued_at, id) WHERE state IN ('queued', 'offered');
CREATE INDEX work_items_agent ON work_items (assigned_to, state) WHERE assigned_to IS NOT NULL;
CREATE INDEX work_items_offered ON work_items (offered_to, state) WHERE offered_to IS NOT NULL;
CREATE INDEX work_items_updated ON work_items (updated_at, id);

CREATE TABLE work_item_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    work_item_id INTEGER NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    actor_id     INTEGER,
    actor        TEXT    NOT NULL DEFAULT 'system',
    kind         TEXT    NOT NULL,
    from_state   TEXT    NOT NULL DEFAULT '',
    to_state     TEXT    NOT NULL DEFAULT '',
    agent_id     INTEGER,
    queue_id     INTEGER,
    reason       TEXT    NOT NULL DEFAULT '',
    -- the decision trace (JSON) of an offer or assignment: why this agent, why now
    trace        TEXT
);
CREATE INDEX work_item_events_item ON work_item_events (work_item_id, id);
CREATE INDEX work_item_events_at ON work_item_events (at, id);

-- Whether an item's SLA at-risk and breach instants were recorded as events, so that each
-- is recorded once, by any node.
ALTER TABLE work_items ADD COLUMN sla_risk_noted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE work_items ADD COLUMN sla_breach_noted BOOLEAN NOT NULL DEFAULT FALSE;
-- The SLA instants still to record: a recorded one leaves its index (and so does one of an
-- item that no longer waits, marked when the check meets it), so that the check every
-- second reads only what is due.
CREATE INDEX work_items_sla_due ON work_items (sla_due_at) WHERE NOT sla_breach_noted;
CREATE INDEX work_items_sla_risk ON work_items (sla_risk_at) WHERE NOT sla_risk_noted;
