package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// DefaultRetentionEvery is how often retention runs.
const DefaultRetentionEvery = time.Hour

// retentionBatch is how many conversations one look-up returns.
const retentionBatch = 100

// Retention applies the queues' retention settings.
type Retention struct {
	Store  store.Store
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// QueueResult is what one run did in one queue.
type QueueResult struct {
	QueueID int64
	Mode    string
	Days    int
	Counts  store.ErasureCounts
}

// retentionAudit is the New value of a retention audit event.
type retentionAudit struct {
	Days int `json:"days"`
	store.ErasureCounts
}

func (r *Retention) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// RunOnce applies every queue's retention once: the conversations done more than the
// queue's days ago are deleted or anonymised, each in its own transaction. A queue that
// fails is logged and the others go on; the error returned is the first.
func (r *Retention) RunOnce(ctx context.Context) ([]QueueResult, error) {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	queues, err := r.Store.ListQueues(ctx)
	if err != nil {
		return nil, fmt.Errorf("retention: list queues: %w", err)
	}
	var out []QueueResult
	var first error
	for _, q := range queues {
		var qs routing.QueueSettings
		if len(q.Spec) > 0 {
			if err := json.Unmarshal(q.Spec, &qs); err != nil {
				r.log().WarnContext(ctx, "retention: queue settings unreadable: save the queue's settings again", slog.Int64("queue_id", q.ID), slog.Any("error", err))
				continue
			}
		}
		if qs.RetentionDays <= 0 || (qs.RetentionMode != store.RetentionDelete && qs.RetentionMode != store.RetentionAnonymise) {
			continue
		}
		res, err := r.queue(ctx, q.ID, qs, now)
		if res.Counts.Conversations > 0 {
			out = append(out, res)
		}
		if err != nil {
			r.log().ErrorContext(ctx, "retention: queue not finished; the next run goes on", slog.Int64("queue_id", q.ID), slog.Any("error", err))
			if first == nil {
				first = err
			}
		}
	}
	return out, first
}

// queue applies one queue's retention and audits what it did.
func (r *Retention) queue(ctx context.Context, queueID int64, qs routing.QueueSettings, now time.Time) (QueueResult, error) {
	res := QueueResult{QueueID: queueID, Mode: qs.RetentionMode, Days: qs.RetentionDays}
	before := now.Add(-time.Duration(qs.RetentionDays) * 24 * time.Hour)
	anonymise := qs.RetentionMode == store.RetentionAnonymise
	var err error
	for err == nil {
		var ids []int64
		ids, err = r.Store.RetentionDue(ctx, queueID, before, anonymise, retentionBatch)
		if err != nil {
			break
		}
		for _, id := range ids {
			var c store.ErasureCounts
			if anonymise {
				c, err = r.Store.AnonymiseConversation(ctx, id)
			} else {
				c, err = r.Store.DeleteConversation(ctx, id)
			}
			if store.IsNotFound(err) { // removed meanwhile (an erasure)
				err = nil
				continue
			}
			if err != nil {
				break
			}
			res.Counts.Add(c)
		}
		if len(ids) < retentionBatch || ctx.Err() != nil {
			break
		}
	}
	if res.Counts.Conversations > 0 {
		newValue, _ := json.Marshal(retentionAudit{Days: qs.RetentionDays, ErasureCounts: res.Counts})
		// The audit outlives a cancelled run: what was removed is recorded.
		if aerr := r.Store.AddAudit(context.WithoutCancel(ctx), store.AuditEvent{Actor: "system", Action: "retention." + qs.RetentionMode,
			Object: fmt.Sprintf("queue:%d", queueID), New: string(newValue)}); aerr != nil && err == nil {
			err = aerr
		}
		r.log().InfoContext(ctx, "retention applied", slog.Int64("queue_id", queueID), slog.String("mode", qs.RetentionMode),
			slog.Int("conversations", res.Counts.Conversations), slog.Int("messages", res.Counts.Messages))
	}
	if err != nil {
		return res, fmt.Errorf("retention of queue %d: %w", queueID, err)
	}
	return res, nil
}

// Run applies retention at once and then every `every` (0: DefaultRetentionEvery) until
// ctx is done.
func (r *Retention) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultRetentionEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_, _ = r.RunOnce(ctx) // errors are logged
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
