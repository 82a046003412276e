-- Who claimed an outbox row, so that a restarted process releases its dead predecessor's
-- claims at once instead of waiting for their lease (DESIGN.md invariant 11), and the
-- Microsoft Graph draft a row is sent through, so that a resend after a crash is
-- recognised.

-- claim_node: the node (stable per data folder) of the process that claimed the row;
-- claim_instance: that process's random id, new at each start. '' when not claimed.
ALTER TABLE outbox ADD COLUMN claim_node TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN claim_instance TEXT NOT NULL DEFAULT '';
-- graph_draft_id: the complete draft in the mailbox's Drafts that /send sends ('' none).
ALTER TABLE outbox ADD COLUMN graph_draft_id TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_claimed ON outbox (claim_node, claim_instance) WHERE claim_instance <> '';
