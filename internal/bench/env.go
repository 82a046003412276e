package bench

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/connector/imap"
	"github.com/postroom/postroom/internal/localserver"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

const (
	// seedBatch is how many messages are generated and appended at a time, so the benchmark
	// never holds all of them in memory (localserver appends up to 1000 in one MULTIAPPEND).
	seedBatch = 1000
	// pollEvery is how often the store is asked whether the ingest is done: small against
	// the seconds an ingest run takes, large enough not to load the store.
	pollEvery = 20 * time.Millisecond
	// stallTimeout ends a run in which nothing more was stored or acknowledged for this long:
	// the figures then show what was lost instead of the benchmark hanging.
	stallTimeout = 60 * time.Second
	// verifyWorkers read the stored messages back in parallel (the SQLite store has a pool
	// of 8 readers).
	verifyWorkers = 4
	// doveadmTimeout bounds one doveadm call of the benchmark.
	doveadmTimeout = 2 * time.Minute
	// benchFolder is the IMAP folder the messages are loaded into and read from.
	benchFolder = "INBOX"
	// mailboxMaxSizeMB is the inbound mailbox's Max size: the largest the product allows,
	// so the 20 MB message is ingested whole.
	mailboxMaxSizeMB = 20
)

// server is a throwaway Dovecot on loopback with the users the benchmark logs in as.
type server struct {
	d        *localserver.Dovecot
	stop     func() error
	password string
	tls      bool
	roots    *x509.CertPool
}

// startServer starts Dovecot and creates users, all with the same random password.
func startServer(users []string, useTLS bool) (*server, error) {
	d, err := localserver.StartDovecot(nil)
	if err != nil {
		return nil, fmt.Errorf("start dovecot: %w", err)
	}
	stop := d.Shutdown
	s := &server{d: d, stop: stop, password: rand.Text(), tls: useTLS, roots: x509.NewCertPool()}
	s.roots.AppendCertsFromPEM(d.CertPEM)
	for _, u := range users {
		if err := d.WriteUser(u, s.password); err != nil {
			stop()
			return nil, err
		}
	}
	return s, nil
}

// addr is the IMAP address clients use: implicit TLS or plain text, both on loopback.
func (s *server) addr() (host string, port int, security string) {
	a, sec := s.d.IMAPAddr, imap.SecurityNone
	if s.tls {
		a, sec = s.d.IMAPSAddr, imap.SecurityTLS
	}
	h, p, _ := net.SplitHostPort(a)
	port, _ = strconv.Atoi(p)
	return h, port, sec
}

// seed appends n messages made by gen (message i of size bytes) to the INBOX of every
// user, seedBatch at a time, and returns their Message-IDs.
func (s *server) seed(ctx context.Context, users []string, n int, gen func(i int) []byte, ids func(i int) string) ([]string, error) {
	out := make([]string, 0, n)
	for start := 0; start < n; start += seedBatch {
		raws := make([][]byte, 0, min(seedBatch, n-start))
		for i := start; i < n && i < start+seedBatch; i++ {
			raws = append(raws, gen(i))
			out = append(out, ids(i))
		}
		for _, u := range users {
			actx, cancel := context.WithTimeout(ctx, doveadmTimeout)
			err := s.d.AppendManyContext(actx, u, benchFolder, raws)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("load messages: %w", err)
			}
		}
	}
	return out, nil
}

// seenCount counts the messages of the user's INBOX flagged \Seen at the server.
func (s *server) seenCount(ctx context.Context, user string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, doveadmTimeout)
	defer cancel()
	out, err := s.d.Doveadm(ctx, nil, "search", "-u", user, "mailbox", benchFolder, "SEEN")
	if err != nil {
		return 0, fmt.Errorf("count \\Seen messages of %s: %w", user, err)
	}
	return len(strings.Fields(string(out))) / 2, nil // one "<mailbox-guid> <uid>" line each
}

// uidValidity is the UIDVALIDITY of the user's INBOX.
func (s *server) uidValidity(ctx context.Context, user string) (uint32, error) {
	ctx, cancel := context.WithTimeout(ctx, doveadmTimeout)
	defer cancel()
	out, err := s.d.Doveadm(ctx, nil, "mailbox", "status", "-u", user, "uidvalidity", benchFolder)
	if err != nil {
		return 0, err
	}
	for _, f := range strings.Fields(string(out)) { // "INBOX uidvalidity=1795507417"
		if v, ok := strings.CutPrefix(f, "uidvalidity="); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return 0, fmt.Errorf("doveadm mailbox status output %q: %w", out, err)
			}
			return uint32(n), nil
		}
	}
	return 0, fmt.Errorf("doveadm mailbox status output %q: no uidvalidity", out)
}

// endpoint is the IMAP server the product's mailboxes log in to: Dovecot (server) or the
// go-imap peer of the idle benchmark (goimapPeer).
type endpoint interface {
	addr() (host string, port int, security string)
	secret() string          // every user's password
	rootCAs() *x509.CertPool // trusted for TLS, nil when there is none
}

func (s *server) secret() string          { return s.password }
func (s *server) rootCAs() *x509.CertPool { return s.roots }

// product is a postroom App on SQLite in a temporary folder with one inbound IMAP mailbox.
type product struct {
	app     *app.App
	dir     string
	mailbox store.Mailbox

	closeOnce sync.Once
	closeErr  error
}

// openProduct opens the App and adds the inbound mailbox for user; nothing runs yet.
func openProduct(ctx context.Context, s endpoint, user string, log *slog.Logger) (*product, error) {
	dir, err := os.MkdirTemp("", "postroom-bench-")
	if err != nil {
		return nil, fmt.Errorf("create a temporary data folder: %w", err)
	}
	noEnv := func(string) string { return "" } // never a production key in a throwaway folder
	a, err := app.Open(ctx, app.Config{DataDir: dir, Getenv: noEnv, Logger: log, Version: "bench", RootCAs: s.rootCAs()})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	host, port, security := s.addr()
	m, err := a.EnsureMailbox(ctx, "bench", app.MailboxInput{
		Mailbox: store.Mailbox{
			Name: "bench", Direction: store.Inbound, Protocol: "imap", Address: user,
			Host: host, Port: port, Security: security, Login: user, Folder: benchFolder,
			AfterAction: store.AfterMarkRead, MaxSizeMB: mailboxMaxSizeMB, Enabled: true,
		},
		Password: vault.NewSecret(s.secret()),
	})
	if err != nil {
		a.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("add the inbound mailbox: %w", err)
	}
	return &product{app: a, dir: dir, mailbox: m}, nil
}

// close closes the store and removes the data folder; it is idempotent.
func (p *product) close() error {
	p.closeOnce.Do(func() {
		p.closeErr = p.app.Close()
		os.RemoveAll(p.dir)
	})
	return p.closeErr
}

// runUntilDone starts the App's ingest and returns once want messages are stored and none
// waits for its acknowledgement at the source, or when nothing moved for stallTimeout (then
// with stalled true). The App is stopped before it returns; elapsed is up to the moment
// the condition was seen.
func (p *product) runUntilDone(ctx context.Context, want int) (elapsed time.Duration, stalled bool, err error) {
	runCtx, cancel := context.WithCancel(ctx)
	start := time.Now()
	wait := p.app.Start(runCtx)
	defer func() {
		cancel()
		wait()
	}()
	st, id := p.app.Store, p.mailbox.ID
	n, pending := -1, -1
	lastMove := start
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-tick.C:
		}
		// Pending acknowledgements first: it reads an index of a few rows, where counting
		// reads every stored message, so the count runs only when nothing is pending.
		ids, err := st.PendingAcks(ctx, id)
		if err != nil {
			return time.Since(start), false, fmt.Errorf("list unacknowledged messages: %w", err)
		}
		count := n
		if len(ids) == 0 {
			if count, err = st.CountMessages(ctx, id); err != nil {
				return time.Since(start), false, fmt.Errorf("count stored messages: %w", err)
			}
			if count >= want {
				return time.Since(start), false, nil
			}
		}
		if count != n || len(ids) != pending {
			n, pending, lastMove = count, len(ids), time.Now()
		} else if time.Since(lastMove) > stallTimeout {
			return time.Since(start), true, nil
		}
	}
}

// tally compares what the store holds with the messages at the server: lost are messages
// at the server (by Message-ID) that are not stored, duplicated are stored messages beyond
// one per Message-ID.
func tally(ctx context.Context, st store.Store, mailboxID int64, uidValidity uint32, msgs []localserver.DovecotMessage) (lost, duplicated int, err error) {
	stored := make([]string, len(msgs)) // Message-ID stored through each server message, "" if none
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range verifyWorkers {
		wg.Go(func() {
			for i := range next {
				m, err := st.MessageBySource(ctx, mailboxID, imap.SourceID(uidValidity, msgs[i].UID))
				switch {
				case err == nil:
					stored[i] = m.MessageID
				case !store.IsNotFound(err):
					errs[i] = err
				}
			}
		})
	}
	for i := range msgs {
		next <- i
	}
	close(next)
	wg.Wait()
	distinct := map[string]bool{}
	for i, m := range msgs {
		if errs[i] != nil {
			return 0, 0, fmt.Errorf("read back message uid %d: %w", m.UID, errs[i])
		}
		want := strings.Trim(m.MessageID, "<> ")
		if stored[i] == "" || stored[i] != want {
			lost++
			continue
		}
		distinct[want] = true
	}
	total, err := st.CountMessages(ctx, mailboxID)
	if err != nil {
		return 0, 0, fmt.Errorf("count stored messages: %w", err)
	}
	return lost, max(total-len(distinct), 0), nil
}
