// Package ingest runs one loop per enabled inbound mailbox: connect, fetch what waits,
// parse it, store it, acknowledge it at the source, then wait (IMAP IDLE, or poll).
//
// Invariants a change must keep:
//
//  1. Commit, then ack (DESIGN.md 1). A message is acknowledged at its source only after
//     the transaction that stores it (raw, parsed, conversation, work item, cursor) has
//     committed. A crash between the two leaves the message stored but unacknowledged: the
//     store lists it in PendingAcks and the next session acknowledges it first; a re-fetch
//     is recognised by the dedup key (mailbox, source id) and stores nothing.
//  2. Nothing is dropped (DESIGN.md 5): a message that cannot be parsed is stored raw and
//     becomes a work item flagged unparsed.
//  3. A failing mailbox is visible (DESIGN.md 9): every failure sets the mailbox's status
//     to error with advice and logs it; the loop retries with exponential backoff and
//     jitter, and the process keeps running.
package ingest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/imap"
	"github.com/postroom/postroom/internal/connector/pop3"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Defaults of Options.
const (
	defaultBatchSize      = 50               // messages fetched per round trip
	defaultReloadInterval = 5 * time.Second  // how often the list of enabled mailboxes is read
	defaultPollInterval   = 60 * time.Second // when a mailbox sets none
	// maxIdle re-issues IDLE before servers drop it: RFC 2177 says clients should re-issue
	// at least every 29 minutes.
	maxIdle = 25 * time.Minute
	// Backoff after a failure: from minBackoff doubling to maxBackoff, with ±25% jitter.
	minBackoff = 1 * time.Second
	maxBackoff = 5 * time.Minute
)

// Options configure a Runner.
type Options struct {
	Store     store.Store
	Passwords *credential.Passwords
	Logger    *slog.Logger
	// RootCAs replaces the system roots for TLS connections (tests).
	RootCAs        *x509.CertPool
	BatchSize      int
	ReloadInterval time.Duration
	// AfterCommit, when set, runs after each message's transaction committed and before it
	// is acknowledged. An error from it ends the session as a crash would, without
	// acknowledging: tests use it to prove that no duplicate follows.
	AfterCommit func(mailboxID int64, sourceID string) error
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Runner supervises the per-mailbox loops.
type Runner struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	running map[int64]*loop
}

type loop struct {
	cancel  context.CancelFunc
	done    chan struct{}
	updated time.Time // the mailbox's UpdatedAt when the loop started
}

// NewRunner returns a Runner. It does no I/O.
func NewRunner(opts Options) *Runner {
	if opts.BatchSize <= 0 {
		opts.BatchSize = defaultBatchSize
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = defaultReloadInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Runner{opts: opts, log: log, running: map[int64]*loop{}}
}

// Run starts a loop for every enabled inbound mailbox and keeps the set in step with the
// store (mailboxes enabled, disabled, changed or deleted) until ctx is done. It returns
// after every loop has stopped.
func (r *Runner) Run(ctx context.Context) error {
	defer r.stopAll()
	t := time.NewTicker(r.opts.ReloadInterval)
	defer t.Stop()
	for {
		if err := r.sync(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("ingest: cannot read the mailbox list; retrying", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (r *Runner) sync(ctx context.Context) error {
	boxes, err := r.opts.Store.ListMailboxes(ctx)
	if err != nil {
		return fmt.Errorf("list mailboxes: %w", err)
	}
	want := map[int64]store.Mailbox{}
	for _, m := range boxes {
		if m.Direction == store.Inbound && m.Enabled && (m.Protocol == "imap" || m.Protocol == "pop3") {
			want[m.ID] = m
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, l := range r.running {
		m, ok := want[id]
		if !ok || !m.UpdatedAt.Equal(l.updated) {
			l.cancel()
			<-l.done
			delete(r.running, id)
		}
	}
	for id, m := range want {
		if _, ok := r.running[id]; ok {
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		l := &loop{cancel: cancel, done: make(chan struct{}), updated: m.UpdatedAt}
		r.running[id] = l
		go func() {
			defer close(l.done)
			r.runMailbox(lctx, m)
		}()
	}
	return nil
}

func (r *Runner) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, l := range r.running {
		l.cancel()
		<-l.done
		delete(r.running, id)
	}
}

// runMailbox runs sessions until ctx is done, backing off after each failure.
func (r *Runner) runMailbox(ctx context.Context, m store.Mailbox) {
	log := r.log.With(slog.Int64("mailbox_id", m.ID), slog.String("mailbox", m.Name))
	failures := 0
	for ctx.Err() == nil {
		connected, err := r.session(ctx, m, log)
		if ctx.Err() != nil {
			return
		}
		if connected {
			failures = 0
		}
		failures++
		wait := backoff(failures)
		log.Error("mailbox failing; retrying", slog.Any("error", err),
			slog.String("advice", connector.Advice(err)), slog.Duration("retry_in", wait))
		r.setStatus(context.WithoutCancel(ctx), m.ID, store.StatusError, err.Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// backoff is the wait after the n-th failure in a row: exponential with jitter.
func backoff(n int) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	jitter := time.Duration(rand.Int64N(int64(d)/2)) - d/4
	return d + jitter
}

// session connects once and ingests until an error or ctx ends. connected reports whether
// the login succeeded, so that the backoff starts again from the bottom.
func (r *Runner) session(ctx context.Context, m store.Mailbox, log *slog.Logger) (connected bool, err error) {
	cursor, err := r.opts.Store.Cursor(ctx, m.ID)
	if err != nil && !store.IsNotFound(err) {
		return false, fmt.Errorf("read cursor: %w", err)
	}
	password, err := r.opts.Passwords.Get(ctx, m.ID)
	if err != nil {
		return false, err
	}
	src, err := r.dial(ctx, m, cursor.Value, password, log)
	if err != nil {
		return false, err
	}
	defer src.Close()
	r.setStatus(ctx, m.ID, store.StatusConnected, "")
	log.Info("mailbox connected", slog.String("host", m.Host), slog.String("folder", m.Folder))

	if err := r.ackPending(ctx, m, src); err != nil {
		return true, err
	}
	poll := m.PollInterval
	if poll <= 0 {
		poll = defaultPollInterval
	}
	for {
		n, err := r.drain(ctx, m, src, log)
		if err != nil {
			return true, err
		}
		if n > 0 {
			continue
		}
		if w, ok := connector.Source(src).(connector.Waiter); ok {
			if err := w.Wait(ctx, min(poll, maxIdle)); err != nil {
				return true, err
			}
		} else {
			select {
			case <-ctx.Done():
			case <-time.After(poll):
			}
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		r.setStatus(ctx, m.ID, store.StatusConnected, "")
	}
}

// dial opens the mailbox's source.
func (r *Runner) dial(ctx context.Context, m store.Mailbox, cursor string, password vault.Secret, log *slog.Logger) (connector.Source, error) {
	switch m.Protocol {
	case "imap":
		return imap.Dial(ctx, imap.Config{
			Host: m.Host, Port: m.Port, Security: m.Security, Login: m.Login, Password: password,
			Folder: m.Folder, Cursor: cursor, AfterAction: m.AfterAction, MoveFolder: m.MoveFolder,
			MaxSize: maxSize(m), RootCAs: r.opts.RootCAs, Logger: log,
		})
	case "pop3":
		return pop3.Dial(ctx, pop3.Config{
			Host: m.Host, Port: m.Port, Security: m.Security, Login: m.Login, Password: password,
			AfterAction: m.AfterAction, MaxSize: maxSize(m), RootCAs: r.opts.RootCAs, Logger: log,
			// POP3 has no cursor: what is stored already is not downloaded again.
			Skip: func(sourceID string) bool {
				_, err := r.opts.Store.MessageBySource(ctx, m.ID, sourceID)
				return err == nil
			},
		})
	}
	return nil, &connector.Error{Kind: connector.KindConfig, Op: "connect", Err: fmt.Errorf("protocol %q", m.Protocol),
		Advice: "this kind of mailbox cannot be read yet: use imap or pop3"}
}

// maxSize is the mailbox's Max size in bytes.
func maxSize(m store.Mailbox) int64 {
	if m.MaxSizeMB <= 0 {
		return 0
	}
	return int64(m.MaxSizeMB) << 20
}

// ackPending finishes what an earlier session left between commit and acknowledgement:
// messages stored whole are acknowledged, those stored over size are set aside.
func (r *Runner) ackPending(ctx context.Context, m store.Mailbox, src connector.Source) error {
	ids, err := r.opts.Store.PendingAcks(ctx, m.ID)
	if err != nil {
		return fmt.Errorf("list unacknowledged messages: %w", err)
	}
	var whole, over []string
	for _, id := range ids {
		msg, err := r.opts.Store.MessageBySource(ctx, m.ID, id)
		if err != nil {
			return fmt.Errorf("read unacknowledged message %s: %w", id, err)
		}
		if msg.OverSize {
			over = append(over, id)
		} else {
			whole = append(whole, id)
		}
	}
	if err := r.ack(ctx, m, src, whole, false); err != nil {
		return err
	}
	return r.ack(ctx, m, src, over, true)
}

// ack acknowledges ids at the source (or sets them aside) and records that it did.
func (r *Runner) ack(ctx context.Context, m store.Mailbox, src connector.Source, ids []string, setAside bool) error {
	if len(ids) == 0 {
		return nil
	}
	var err error
	if setAside {
		err = src.SetAside(ctx, ids)
	} else {
		err = src.Ack(ctx, ids)
	}
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := r.opts.Store.MarkAcked(ctx, m.ID, id); err != nil {
			return fmt.Errorf("record ack of %s: %w", id, err)
		}
	}
	return nil
}

// drain fetches one batch, stores each message, then acknowledges the batch.
func (r *Runner) drain(ctx context.Context, m store.Mailbox, src connector.Source, log *slog.Logger) (int, error) {
	batch, err := src.Next(ctx, r.opts.BatchSize)
	if err != nil {
		return 0, err
	}
	var committed, over []string
	finish := func() error {
		if err := r.ack(ctx, m, src, committed, false); err != nil {
			return err
		}
		return r.ack(ctx, m, src, over, true)
	}
	for _, in := range batch {
		res, err := r.store(ctx, m, in)
		if err != nil {
			// Acknowledge what did commit before giving up on this session.
			if ackErr := finish(); ackErr != nil {
				log.Warn("ack after failure", slog.Any("error", ackErr))
			}
			return 0, err
		}
		if res.Duplicate {
			log.Debug("message already stored", slog.String("source_id", in.SourceID))
		} else {
			log.Info("message ingested", slog.String("source_id", in.SourceID),
				slog.Int64("work_item_id", res.WorkItemID), slog.Bool("threaded", res.Threaded))
		}
		if r.opts.AfterCommit != nil {
			if err := r.opts.AfterCommit(m.ID, in.SourceID); err != nil {
				return 0, fmt.Errorf("after commit of %s: %w", in.SourceID, err)
			}
		}
		if in.OverSize {
			over = append(over, in.SourceID)
		} else {
			committed = append(committed, in.SourceID)
		}
	}
	if err := finish(); err != nil {
		return 0, err
	}
	return len(batch), nil
}

// store parses and stores one message with its cursor in one transaction.
func (r *Runner) store(ctx context.Context, m store.Mailbox, in connector.Incoming) (store.IngestResult, error) {
	parsed := message.Parse(in.Raw)
	parsed.MailboxID = m.ID
	parsed.Direction = store.Inbound
	parsed.SourceID = in.SourceID
	if parsed.Date.IsZero() {
		parsed.Date = r.opts.Now()
	}
	var cursor *store.Cursor
	if in.Cursor != "" {
		cursor = &store.Cursor{MailboxID: m.ID, Value: in.Cursor}
	}
	inbound := store.InboundMessage{
		MailboxID:  m.ID,
		Raw:        in.Raw,
		Message:    parsed,
		Cursor:     cursor,
		ReceivedAt: in.ReceivedAt,
	}
	if in.OverSize {
		inbound.Message.OverSize = true
		inbound.Message.Size = in.Size
		// A header-only "message" parses fine; what is missing is said plainly.
		inbound.Message.TextBody = fmt.Sprintf("This message is %s, over this mailbox's Max size of %d MB, so only its header was stored. "+
			"The original is kept at the mail server (IMAP: in the folder %q).", formatMB(in.Size), m.MaxSizeMB, imap.OversizeFolder)
		notice, err := r.oversizeNotice(ctx, m, in, parsed)
		if err != nil {
			return store.IngestResult{}, err
		}
		inbound.AutoReply = notice
	}
	res, err := r.opts.Store.IngestMessage(ctx, inbound)
	if err != nil {
		return res, fmt.Errorf("store message %s: %w", in.SourceID, err)
	}
	return res, nil
}

func (r *Runner) setStatus(ctx context.Context, id int64, status, msg string) {
	err := r.opts.Store.SetMailboxStatus(ctx, id, store.MailboxStatus{Status: status, Message: msg, At: r.opts.Now()})
	if err != nil && !errors.Is(err, context.Canceled) {
		r.log.Warn("cannot record mailbox status", slog.Int64("mailbox_id", id), slog.Any("error", err))
	}
}
