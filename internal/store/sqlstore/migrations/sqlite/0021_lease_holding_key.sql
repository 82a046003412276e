-- mailbox_leases_holding: the same unique index as on PostgreSQL, where it makes node_id and
-- generation key columns so that a lease holder's fence check (FOR KEY SHARE) holds off a
-- take but not the holder's renewal. SQLite has one writer and takes no row locks; the index
-- keeps the two schemas alike. mailbox_id is the primary key, so it never refuses a row.
CREATE UNIQUE INDEX mailbox_leases_holding ON mailbox_leases (mailbox_id, node_id, generation);
