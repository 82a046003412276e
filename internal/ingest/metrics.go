package ingest

import (
	"errors"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/metrics"
)

// ingestMetrics are the ingest loop's metrics, labelled by mailbox name (unique among
// mailboxes, set at creation). Without a registry every method does nothing.
type ingestMetrics struct {
	upGauge     *metrics.Gauge   // postroom_mailbox_up{mailbox}
	errors      *metrics.Counter // postroom_mailbox_errors_total{mailbox,kind}
	ingested    *metrics.Counter // postroom_messages_ingested_total{mailbox}
	duplicates  *metrics.Counter // postroom_ingest_duplicates_total{mailbox}
	quarantined *metrics.Counter // postroom_messages_quarantined_total{mailbox}
	// latency is postroom_ingest_latency_seconds: arrival at the source to the commit.
	latency *metrics.Histogram
}

// latencyBuckets are the upper bounds (seconds) of postroom_ingest_latency_seconds: from
// a push (IDLE, Graph notification) in under a second to a poll interval and to a
// mailbox that was down for hours.
func latencyBuckets() []float64 {
	return []float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600}
}

func newIngestMetrics(r *metrics.Registry) ingestMetrics {
	return ingestMetrics{
		upGauge: r.Gauge("postroom_mailbox_up",
			"1 when the inbound mailbox's session is connected, 0 when its last attempt failed (see the mailboxes page and the log for the advice).", "mailbox"),
		errors: r.Counter("postroom_mailbox_errors_total",
			"Failed sessions of an inbound mailbox, by kind: auth, network, tls, config, server (connector.Kind), store (a message could not be stored) or other.", "mailbox", "kind"),
		ingested: r.Counter("postroom_messages_ingested_total",
			"Inbound messages stored (duplicates and quarantined messages not counted).", "mailbox"),
		duplicates: r.Counter("postroom_ingest_duplicates_total",
			"Inbound messages fetched that were stored already: re-fetched after a crash, a copy through another mailbox, or re-read after a UIDVALIDITY change.", "mailbox"),
		quarantined: r.Counter("postroom_messages_quarantined_total",
			"Inbound messages that failed to be stored too many times and were kept raw, flagged unparsed, so that the mailbox moves on.", "mailbox"),
		latency: r.Histogram("postroom_ingest_latency_seconds",
			"Seconds from an inbound message's arrival at its mail server (IMAP INTERNALDATE, Graph receivedDateTime) to the commit of its work item; POP3 gives no arrival time and is not measured.",
			latencyBuckets()),
	}
}

// stored observes the latency of a message that arrived at its source at arrived and
// whose work item committed at now; an unknown (zero) arrival is not observed, and a
// server clock ahead of ours counts as 0.
func (m ingestMetrics) stored(arrived, now time.Time) {
	if arrived.IsZero() {
		return
	}
	m.latency.Observe(max(0, now.Sub(arrived).Seconds()))
}

// watch starts a mailbox's series at 0, so that a dashboard sees them before any event.
func (m ingestMetrics) watch(mailbox string) {
	m.ingested.Touch(mailbox)
	m.duplicates.Touch(mailbox)
	m.quarantined.Touch(mailbox)
}

// up records a working session.
func (m ingestMetrics) up(mailbox string) { m.upGauge.Set(1, mailbox) }

// failed records a failed session.
func (m ingestMetrics) failed(mailbox, kind string) {
	m.upGauge.Set(0, mailbox)
	m.errors.Inc(mailbox, kind)
}

// forget removes the up gauge of a mailbox that is no longer watched (disabled or
// deleted); its counters stay, as counters do.
func (m ingestMetrics) forget(mailbox string) { m.upGauge.Delete(mailbox) }

// errorKind is the kind label of a session failure.
func errorKind(err error) string {
	var ce *connector.Error
	if errors.As(err, &ce) {
		return string(ce.Kind)
	}
	var se *storeError
	if errors.As(err, &se) {
		return "store"
	}
	return "other"
}
