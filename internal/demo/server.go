package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-smtp"
)

// Addresses and logins of the demo mail system.
const (
	DefaultIMAPAddr = "127.0.0.1:1143"
	DefaultSMTPAddr = "127.0.0.1:2525"
	SupportAddress  = "support@example.com" // the inbound mailbox customers write to
	SupportLogin    = "support@example.com" // IMAP login of the inbound mailbox
	SendLogin       = "replies@example.com" // SMTP AUTH login of the outbound mailbox (accepted, optional)
	CustomersLogin  = "customers"           // IMAP login where mail to anyone outside example.com lands (so replies can be read)
)

const (
	// defaultPassword is the password of every demo login when Options has none.
	defaultPassword = "demo"
	// demoDomain is the domain whose recipients are delivered to the support
	// INBOX; every other recipient goes to the customers INBOX.
	demoDomain = "example.com"
	// serverHostname names the demo server in greetings and Received headers.
	serverHostname = "mail.example.com"
	// inboxName is the one mailbox name IMAP reserves: RFC 3501 §5.1.
	inboxName = "INBOX"
)

// Options configures Start. The zero value listens on the default addresses
// with the password "demo".
type Options struct {
	IMAPAddr, SMTPAddr string // defaults above when empty
	Password           string // password of all demo mail logins; "demo" when empty
	Logger             *slog.Logger
}

// Server is a running demo mail server.
type Server struct {
	IMAPAddr, SMTPAddr string // actual listening addresses
	Password           string

	log       *slog.Logger
	store     *mailStore
	imap      *imapserver.Server
	smtp      *smtp.Server
	imapLn    net.Listener
	smtpLn    net.Listener
	serving   sync.WaitGroup
	done      chan struct{} // closed by Close
	closed    atomic.Bool   // set before the servers are closed
	closeOnce sync.Once
	closeErr  error
}

// Start listens on both addresses, loads Samples into the support INBOX and
// serves IMAP and SMTP until ctx is done or Close is called. It returns once
// both listeners are open, so a client may connect right away.
func Start(ctx context.Context, opts Options) (*Server, error) {
	imapAddr := cmp.Or(opts.IMAPAddr, DefaultIMAPAddr)
	smtpAddr := cmp.Or(opts.SMTPAddr, DefaultSMTPAddr)
	password := cmp.Or(opts.Password, defaultPassword)
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With(slog.String("component", "demo"))

	var lc net.ListenConfig
	imapLn, err := lc.Listen(ctx, "tcp", imapAddr)
	if err != nil {
		return nil, listenError("IMAP", imapAddr, "-imap-addr", err)
	}
	smtpLn, err := lc.Listen(ctx, "tcp", smtpAddr)
	if err != nil {
		_ = imapLn.Close()
		return nil, listenError("SMTP", smtpAddr, "-smtp-addr", err)
	}

	store, err := loadStore(password)
	if err != nil {
		_ = imapLn.Close()
		_ = smtpLn.Close()
		return nil, err
	}

	s := &Server{
		IMAPAddr: imapLn.Addr().String(),
		SMTPAddr: smtpLn.Addr().String(),
		Password: password,
		log:      log,
		imapLn:   imapLn,
		smtpLn:   smtpLn,
		done:     make(chan struct{}),
		store:    store,
	}
	s.imap = newIMAPServer(store, log.With(slog.String("protocol", "imap")))
	smtpLog := log.With(slog.String("protocol", "smtp"))
	s.smtp = newSMTPServer(&smtpBackend{store: store, password: password, log: smtpLog}, smtpLog)

	s.serving.Add(2)
	go func() {
		defer s.serving.Done()
		if err := s.imap.Serve(imapLn); err != nil && !s.closed.Load() {
			log.Error("demo IMAP server stopped", slog.String("addr", s.IMAPAddr), slog.Any("error", err))
		}
	}()
	go func() {
		defer s.serving.Done()
		if err := s.smtp.Serve(smtpLn); err != nil && !s.closed.Load() {
			log.Error("demo SMTP server stopped", slog.String("addr", s.SMTPAddr), slog.Any("error", err))
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()

	log.Info("demo mail server started",
		slog.String("imap_addr", s.IMAPAddr), slog.String("smtp_addr", s.SMTPAddr),
		slog.String("support_login", SupportLogin), slog.String("customers_login", CustomersLogin))
	return s, nil
}

// loadStore creates the demo users and loads Samples into the support INBOX,
// each with its Date as internal date.
func loadStore(password string) (*mailStore, error) {
	store, err := newMailStore(password)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for i, raw := range Samples(now) {
		if _, err := store.deliver(SupportLogin, raw, messageDate(raw, now)); err != nil {
			return nil, fmt.Errorf("demo load sample %d: %w", i+1, err)
		}
	}
	return store, nil
}

// Close stops both servers, closes every client connection and waits for the
// accept loops to end. The in-memory mail is gone afterwards. Calling Close
// again returns the first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)

		var errs []error
		if err := s.smtp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("demo close SMTP server: %w", err))
		}
		if err := s.imap.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("demo close IMAP server: %w", err))
		}
		// Serve may not have registered its listener yet: close them here too.
		for _, ln := range []net.Listener{s.imapLn, s.smtpLn} {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("demo close listener %s: %w", ln.Addr(), err))
			}
		}
		s.serving.Wait()
		s.closeErr = errors.Join(errs...)
		s.log.Info("demo mail server stopped")
	})
	return s.closeErr
}

// portInUseError says which flag moves the demo server to a free port. Its
// message is meant for the person who typed `postroom demo`.
type portInUseError struct {
	proto, addr, flag string
	err               error
}

func (e *portInUseError) Error() string {
	return fmt.Sprintf("demo %s port %s is in use: stop the other program or pass %s", e.proto, e.addr, e.flag)
}

func (e *portInUseError) Unwrap() error { return e.err }

func listenError(proto, addr, flag string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return &portInUseError{proto: proto, addr: addr, flag: flag, err: err}
	}
	return fmt.Errorf("demo %s listen on %s (change it with %s): %w", proto, addr, flag, err)
}

// printfLogger adapts slog to the Printf-style loggers of go-imap and
// go-smtp, which report connection errors through it.
type printfLogger struct{ log *slog.Logger }

func (p printfLogger) Printf(format string, args ...any) {
	p.report(fmt.Sprintf(format, args...))
}

func (p printfLogger) Println(args ...any) {
	p.report(strings.TrimSuffix(fmt.Sprintln(args...), "\n"))
}

// report logs msg as a warning, except a connection the demo itself closed as it stopped
// (Ctrl-C with a client in IDLE), which is expected and logged for debugging only.
func (p printfLogger) report(msg string) {
	if strings.Contains(msg, net.ErrClosed.Error()) {
		p.log.Debug(msg)
		return
	}
	p.log.Warn(msg)
}
