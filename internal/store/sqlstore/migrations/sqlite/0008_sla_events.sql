-- postroom schema, version 8 (SQLite): whether an item's SLA at-risk and breach instants
-- have been recorded as events, so that each is recorded once, by any node.
ALTER TABLE work_items ADD COLUMN sla_risk_noted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE work_items ADD COLUMN sla_breach_noted BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX work_items_sla_due ON work_items (sla_due_at) WHERE sla_due_at IS NOT NULL;
