-- mailbox_leases_holding makes node_id and generation key columns of mailbox_leases: on
-- PostgreSQL an UPDATE that changes a column of a unique index locks the row FOR UPDATE,
-- one that changes only other columns FOR NO KEY UPDATE. A lease holder's write checks its
-- fence with FOR KEY SHARE: a take by another node (a new node_id and generation) waits for
-- that write to commit, while the holder's renewal (expires_at only) does not, so a node's
-- lease round no longer queues behind its own ingest transactions. mailbox_id is the
-- primary key, so the index never refuses a row.
CREATE UNIQUE INDEX mailbox_leases_holding ON mailbox_leases (mailbox_id, node_id, generation);
