package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

const (
	// idleSettle is how long the watched mailboxes are left idle after the last one
	// connected, before the memory is read: long enough for every loop to be in IDLE.
	idleSettle = 3 * time.Second
	// idleConnectTimeout bounds the wait for every mailbox to connect.
	idleConnectTimeout = 2 * time.Minute
)

// IdleOptions configure Idle.
type IdleOptions struct {
	Mailboxes int
	TLS       bool
	Logger    *slog.Logger
	Progress  io.Writer
}

// IdleResult is what Idle measured.
type IdleResult struct {
	Mailboxes int
	Connected int           // mailboxes connected (then idle) when measured
	Connect   time.Duration // from start until every mailbox was connected
	PeakRSS   int64         // from start until idleSettle after the last connected
	IdleRSS   int64         // RSS once settled
	Baseline  int64
	RSSMethod string
}

// Line is the machine-readable summary, the last line of `postroom bench idle`.
func (r IdleResult) Line() string {
	return fmt.Sprintf("mailboxes=%d connected=%d peak_rss_mb=%s idle_rss_mb=%s baseline_rss_mb=%s",
		r.Mailboxes, r.Connected, mb(r.PeakRSS), mb(r.IdleRSS), mb(r.Baseline))
}

// Report is the human-readable account of the run.
func (r IdleResult) Report(w io.Writer) {
	fmt.Fprintf(w, "mailboxes: %d watched (IMAP IDLE), %d connected after %s\n", r.Mailboxes, r.Connected, r.Connect.Round(time.Millisecond))
	fmt.Fprintf(w, "memory:    peak RSS %s MB, %s MB once idle (baseline before start %s MB; %s)\n",
		mb(r.PeakRSS), mb(r.IdleRSS), mb(r.Baseline), r.RSSMethod)
}

// Idle creates opts.Mailboxes Dovecot users on one Dovecot, one inbound postroom mailbox
// for each, starts the ingest (every mailbox logs in, selects INBOX and waits in IDLE) and
// measures the memory of watching them.
func Idle(ctx context.Context, opts IdleOptions) (IdleResult, error) {
	if opts.Mailboxes < 1 {
		return IdleResult{}, errors.New("need at least one mailbox")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	res := IdleResult{Mailboxes: opts.Mailboxes}
	users := make([]string, opts.Mailboxes)
	for i := range users {
		users[i] = fmt.Sprintf("idle%05d@example.test", i)
	}
	s, err := startServer(users, opts.TLS)
	if err != nil {
		return res, err
	}
	defer s.stop()
	p, err := openProduct(ctx, s, users[0], log)
	if err != nil {
		return res, err
	}
	defer p.close()
	host, port, security := s.addr()
	for i, u := range users[1:] {
		_, err := p.app.EnsureMailbox(ctx, "bench", app.MailboxInput{
			Mailbox: store.Mailbox{
				Name: fmt.Sprintf("idle%05d", i+1), Direction: store.Inbound, Protocol: "imap", Address: u,
				Host: host, Port: port, Security: security, Login: u, Folder: benchFolder,
				AfterAction: store.AfterMarkRead, MaxSizeMB: mailboxMaxSizeMB, Enabled: true,
			},
			Password: vault.NewSecret(s.password),
		})
		if err != nil {
			return res, fmt.Errorf("add inbound mailbox %d: %w", i+1, err)
		}
	}
	fmt.Fprintf(progress, "created:   %d users and %d inbound mailboxes\n", len(users), len(users))

	meter := startPhase()
	res.Baseline = currentRSS()
	res.RSSMethod = meter.Method
	runCtx, cancel := context.WithCancel(ctx)
	start := time.Now()
	wait := p.app.Start(runCtx)
	defer func() {
		cancel()
		wait()
	}()
	deadline := time.Now().Add(idleConnectTimeout)
	for {
		boxes, err := p.app.Store.ListMailboxes(ctx)
		if err != nil {
			return res, fmt.Errorf("list mailboxes: %w", err)
		}
		res.Connected = 0
		for _, m := range boxes {
			if m.Direction == store.Inbound && m.Status == store.StatusConnected {
				res.Connected++
			}
		}
		if res.Connected == opts.Mailboxes || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	res.Connect = time.Since(start)
	fmt.Fprintf(progress, "connected: %d of %d in %s; idle for %s\n", res.Connected, opts.Mailboxes, res.Connect.Round(time.Millisecond), idleSettle)
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(idleSettle):
	}
	res.IdleRSS = currentRSS()
	res.PeakRSS = meter.Peak()
	return res, nil
}
