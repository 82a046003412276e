package bench

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/connector/imap"
	"github.com/postroom/postroom/internal/localserver"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

const (
	// idleSettle is how long the watched mailboxes are left idle after the last one
	// connected, before the memory is read: long enough for every loop to be in IDLE.
	idleSettle = 3 * time.Second
	// idleConnectTimeout bounds the wait for every mailbox to connect; with many mailboxes
	// idleConnectPerMailbox more each (the product signs in 32 at a time).
	idleConnectTimeout    = 2 * time.Minute
	idleConnectPerMailbox = 20 * time.Millisecond
	// idleCountEvery is how often the connected mailboxes are counted while they connect:
	// reading 10,000 mailbox rows allocates in the measured process, so not too often.
	idleCountEvery = 500 * time.Millisecond
	// idleFilesSpare is how many file descriptors the product needs beside one per mailbox
	// (database, listeners, logs).
	idleFilesSpare = 256
)

// Peers of the idle benchmark: the IMAP server at the other end of the watched mailboxes.
const (
	PeerAuto    = "auto"    // Dovecot up to AutoDovecotMax mailboxes, the go-imap peer above
	PeerDovecot = "dovecot" // one Dovecot, one user per mailbox (a process per connection)
	PeerGoIMAP  = "goimap"  // localserver.IMAPPeer in a child process
	// AutoDovecotMax is the most mailboxes PeerAuto puts on Dovecot: Dovecot forks an
	// imap process per connection, and 10,000 of them do not fit on the 2-core machine the
	// benchmark is run on.
	AutoDovecotMax = 1000
	// idleUserFormat names the user of mailbox i at the peer.
	idleUserFormat = "idle%05d@example.test"
)

// IdleOptions configure Idle.
type IdleOptions struct {
	Mailboxes int
	TLS       bool
	// Peer is PeerDovecot, PeerGoIMAP or PeerAuto ("" is PeerAuto).
	Peer string
	// PeerCommand returns the command that runs localserver.RunIMAPPeer with the given
	// user format and number of users (postroom: this executable's hidden
	// `bench imap-peer`); needed for PeerGoIMAP.
	PeerCommand func(userFormat string, users int) *exec.Cmd
	// Settle is how long the mailboxes are left idle before the memory is read
	// (0: idleSettle). A mailbox leaves IDLE and enters it again every poll interval
	// (60 s), so over a minute shows that cycle too.
	Settle time.Duration
	// MemProfile, when set, is where a heap profile is written once the mailboxes idle.
	MemProfile string
	Logger     *slog.Logger
	Progress   io.Writer
}

// IdleResult is what Idle measured.
type IdleResult struct {
	Mailboxes int
	Peer      string // PeerDovecot or PeerGoIMAP
	// Connected counts the mailboxes connected when measured: by the product's mailbox
	// status and, with the go-imap peer, no more than the peer's sessions in IDLE.
	Connected    int
	AppConnected int           // by the product's mailbox status
	PeerIdling   int           // sessions in IDLE at the go-imap peer (-1: not known)
	PeerLoggedIn int           // sessions logged in at the go-imap peer (-1: not known)
	Connect      time.Duration // from start until every mailbox was connected
	Settle       time.Duration // idle after the last connected, before the memory is read
	PeakRSS      int64         // from start until Settle after the last connected
	IdleRSS      int64         // RSS once settled
	Baseline     int64
	RSSMethod    string
	OpenFiles    uint64 // the soft RLIMIT_NOFILE the product ran with
	// Of the Go runtime once idle (runtime/metrics): where the memory is.
	Goroutines int64
	HeapBytes  int64 // heap objects, live and not yet collected
	StackBytes int64 // goroutine stacks
	FreeBytes  int64 // heap memory free but not returned to the OS
}

// Line is the machine-readable summary, the last line of `postroom bench idle`.
func (r IdleResult) Line() string {
	return fmt.Sprintf("mailboxes=%d connected=%d peak_rss_mb=%s idle_rss_mb=%s baseline_rss_mb=%s",
		r.Mailboxes, r.Connected, mb(r.PeakRSS), mb(r.IdleRSS), mb(r.Baseline))
}

// Report is the human-readable account of the run.
func (r IdleResult) Report(w io.Writer) {
	switch r.Peer {
	case PeerGoIMAP:
		fmt.Fprintf(w, "peer:      goimap (go-imap v2 imapserver in a separate process, not measured): %d sessions logged in, %d in IDLE\n", r.PeerLoggedIn, r.PeerIdling)
	default:
		fmt.Fprintf(w, "peer:      dovecot (one user per mailbox)\n")
	}
	fmt.Fprintf(w, "mailboxes: %d watched (IMAP IDLE), %d connected by their status after %s\n", r.Mailboxes, r.AppConnected, r.Connect.Round(time.Millisecond))
	fmt.Fprintf(w, "memory:    peak RSS %s MB, %s MB after %s idle (baseline before start %s MB; %s); %s KB per mailbox above the baseline\n",
		mb(r.PeakRSS), mb(r.IdleRSS), r.Settle, mb(r.Baseline), r.RSSMethod, perMailboxKB(r.IdleRSS-r.Baseline, r.Mailboxes))
	fmt.Fprintf(w, "runtime:   %d goroutines, %s MB of stacks, %s MB of heap objects, %s MB of free heap not returned to the OS\n",
		r.Goroutines, mb(r.StackBytes), mb(r.HeapBytes), mb(r.FreeBytes))
	fmt.Fprintf(w, "files:     soft RLIMIT_NOFILE %d\n", r.OpenFiles)
}

// perMailboxKB is n bytes spread over count mailboxes, in KB with no decimals.
func perMailboxKB(n int64, count int) string {
	if count < 1 {
		return "0"
	}
	return fmt.Sprintf("%.0f", float64(n)/float64(count)/1024)
}

// PickPeer resolves PeerAuto (or "") for n mailboxes and checks the name.
func PickPeer(peer string, n int) (string, error) {
	switch peer {
	case "", PeerAuto:
		if n > AutoDovecotMax {
			return PeerGoIMAP, nil
		}
		return PeerDovecot, nil
	case PeerDovecot, PeerGoIMAP:
		return peer, nil
	}
	return "", fmt.Errorf("unknown peer %q: use %s, %s or %s", peer, PeerAuto, PeerDovecot, PeerGoIMAP)
}

// goimapPeer is the go-imap peer process as the product's endpoint.
type goimapPeer struct {
	proc     *localserver.IMAPPeerProcess
	password string
}

func (g *goimapPeer) addr() (string, int, string) {
	h, p, _ := net.SplitHostPort(g.proc.Addr)
	port, _ := strconv.Atoi(p)
	return h, port, imap.SecurityNone
}
func (g *goimapPeer) secret() string          { return g.password }
func (g *goimapPeer) rootCAs() *x509.CertPool { return nil }

// Idle starts the peer with one user per mailbox (Dovecot, or the go-imap peer in a
// process of its own), one inbound postroom mailbox for each, starts the ingest (every
// mailbox logs in, selects INBOX and waits in IDLE) and measures the memory of watching
// them. Only this process is measured: the peer's memory and files are its own.
func Idle(ctx context.Context, opts IdleOptions) (IdleResult, error) {
	if opts.Mailboxes < 1 {
		return IdleResult{}, errors.New("need at least one mailbox")
	}
	peer, err := PickPeer(opts.Peer, opts.Mailboxes)
	if err != nil {
		return IdleResult{}, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	res := IdleResult{Mailboxes: opts.Mailboxes, Peer: peer, PeerIdling: -1, PeerLoggedIn: -1}
	if res.OpenFiles, err = raiseOpenFiles(uint64(opts.Mailboxes + idleFilesSpare)); err != nil {
		return res, err
	}
	users := make([]string, opts.Mailboxes)
	for i := range users {
		users[i] = localserver.IMAPPeerUser(idleUserFormat, i)
	}
	var ep endpoint
	var gp *goimapPeer
	switch peer {
	case PeerGoIMAP:
		if opts.TLS {
			return res, errors.New("the goimap peer speaks plain text only (loopback): leave out -tls, or use -peer dovecot")
		}
		if opts.PeerCommand == nil {
			return res, errors.New("the goimap peer needs a command to run it")
		}
		password := rand.Text()
		proc, err := localserver.StartIMAPPeer(opts.PeerCommand(idleUserFormat, opts.Mailboxes), password)
		if err != nil {
			return res, err
		}
		defer proc.Stop()
		gp = &goimapPeer{proc: proc, password: password}
		ep = gp
		fmt.Fprintf(progress, "peer:      goimap at %s (pid %d)\n", proc.Addr, proc.Pid())
	default:
		s, err := startServer(users, opts.TLS)
		if err != nil {
			return res, err
		}
		defer s.stop()
		ep = s
	}
	p, err := openProduct(ctx, ep, users[0], log)
	if err != nil {
		return res, err
	}
	defer p.close()
	host, port, security := ep.addr()
	for i, u := range users[1:] {
		_, err := p.app.EnsureMailbox(ctx, "bench", app.MailboxInput{
			Mailbox: store.Mailbox{
				Name: fmt.Sprintf("idle%05d", i+1), Direction: store.Inbound, Protocol: "imap", Address: u,
				Host: host, Port: port, Security: security, Login: u, Folder: benchFolder,
				AfterAction: store.AfterMarkRead, MaxSizeMB: mailboxMaxSizeMB, Enabled: true,
			},
			Password: vault.NewSecret(ep.secret()),
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
	// count reads the peer's sessions (the go-imap peer only) and the mailboxes' status.
	// While the peer has not all of them in IDLE, the status is not read (final: always).
	count := func(final bool) error {
		if gp != nil {
			li, idle, err := gp.proc.Sessions()
			if err != nil {
				return err
			}
			res.PeerLoggedIn, res.PeerIdling = li, idle
			if idle < opts.Mailboxes && !final {
				res.Connected = min(res.AppConnected, idle)
				return nil
			}
		}
		boxes, err := p.app.Store.ListMailboxes(ctx)
		if err != nil {
			return fmt.Errorf("list mailboxes: %w", err)
		}
		res.AppConnected = 0
		for _, m := range boxes {
			if m.Direction == store.Inbound && m.Status == store.StatusConnected {
				res.AppConnected++
			}
		}
		res.Connected = res.AppConnected
		if gp != nil {
			res.Connected = min(res.AppConnected, res.PeerIdling)
		}
		return nil
	}
	deadline := time.Now().Add(max(idleConnectTimeout, time.Duration(opts.Mailboxes)*idleConnectPerMailbox))
	lastShown := time.Now()
	for {
		if err := count(false); err != nil {
			return res, err
		}
		if res.Connected == opts.Mailboxes || time.Now().After(deadline) {
			break
		}
		if time.Since(lastShown) >= 10*time.Second {
			lastShown = time.Now()
			if err := count(true); err != nil {
				return res, err
			}
			fmt.Fprintf(progress, "connecting: %d of %d connected by their status", res.AppConnected, opts.Mailboxes)
			if gp != nil {
				fmt.Fprintf(progress, ", %d in IDLE at the peer", res.PeerIdling)
			}
			fmt.Fprintf(progress, " after %s\n", time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(idleCountEvery):
		}
	}
	res.Connect = time.Since(start)
	settle := opts.Settle
	if settle <= 0 {
		settle = idleSettle
	}
	res.Settle = settle
	fmt.Fprintf(progress, "connected: %d of %d in %s; idle for %s\n", res.Connected, opts.Mailboxes, res.Connect.Round(time.Millisecond), settle)
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(settle):
	}
	res.IdleRSS = currentRSS()
	res.PeakRSS = meter.Peak()
	res.Goroutines, res.HeapBytes, res.StackBytes, res.FreeBytes = runtimeMemory()
	if opts.MemProfile != "" {
		if err := writeHeapProfile(opts.MemProfile); err != nil {
			return res, err
		}
	}
	// What is connected once settled, measured after the memory so the count does not
	// add to it.
	if err := count(true); err != nil {
		return res, err
	}
	return res, nil
}

// runtimeMemory reads the number of goroutines and the bytes of heap objects, goroutine
// stacks and free heap kept from the OS from runtime/metrics.
func runtimeMemory() (goroutines, heap, stacks, free int64) {
	samples := []metrics.Sample{
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(samples)
	v := func(i int) int64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(samples[i].Value.Uint64())
	}
	return v(0), v(1), v(2), v(3)
}
