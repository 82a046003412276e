// Package privacy carries out data protection: retention per queue, the erasure of one
// customer's data on request, and the audit log's filter and CSV export that both the
// pages and the API use.
//
// Retention: a queue's settings (routing.QueueSettings RetentionDays and RetentionMode)
// delete or anonymise its conversations that many days after they are done. Retention.Run
// applies them once at start and then every hour, in batches, each conversation in its
// own transaction (store.Privacy), and writes one audit event per queue and run
// ("retention.delete" or "retention.anonymise", actor "system", object "queue:<id>", the
// counts as JSON in New).
//
// Erasure: every conversation whose customer is the address (one we started to it, or
// one with an inbound message from it) is deleted whole, with the address's bounce record,
// its automatic-message bookkeeping and the drafts elsewhere that copy it in. The audit
// event ("erasure") names the address only by the SHA-256 of its normalised (trimmed,
// lower-case) form, object "address-sha256:<hex>", so it proves the erasure without
// keeping the personal data; New holds the counts.
//
// Neither touches backups, nor the Message-IDs and content hashes kept to recognise a
// deleted email fetched again (kept as a SHA-256, never the text).
package privacy
