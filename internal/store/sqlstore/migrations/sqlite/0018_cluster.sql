-- postroom schema (SQLite; one node holds every lease): several nodes (internal/cluster).
--
-- cluster_nodes has one row per running process: id is "<name>/<instance>" (name: the
-- node's name, from POSTROOM_NODE_NAME or the data folder's node-id file; instance: a
-- random id new at each start). A node writes heartbeat_at every few seconds; a node whose
-- heartbeat is older than the lease time is not live and has no share of the mailboxes.
-- stopping is set at a graceful shutdown, when the node hands its leases over.
CREATE TABLE cluster_nodes (
    id           TEXT        PRIMARY KEY,
    name         TEXT        NOT NULL,
    instance     TEXT        NOT NULL,
    started_at   INTEGER     NOT NULL,
    heartbeat_at INTEGER     NOT NULL,
    stopping     BOOLEAN     NOT NULL DEFAULT FALSE
);
CREATE INDEX cluster_nodes_name ON cluster_nodes (name);

-- mailbox_leases gives each enabled inbound mailbox to at most one node at a time: the row
-- is held by node_id until expires_at ('' when free). generation grows by one at each take
-- and is never reset (a released lease keeps its row), so that (mailbox_id, node_id,
-- generation) names one holding exactly: the cursor, acknowledgement and status writes of
-- a mailbox's ingest loop check it in their transaction (fencing).
CREATE TABLE mailbox_leases (
    mailbox_id  INTEGER     PRIMARY KEY,
    node_id     TEXT        NOT NULL DEFAULT '',
    generation  INTEGER     NOT NULL DEFAULT 0,
    acquired_at INTEGER,
    expires_at  INTEGER
);
CREATE INDEX mailbox_leases_node ON mailbox_leases (node_id);
