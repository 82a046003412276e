// Package imap implements the IMAP Source (RFC 9051, RFC 3501; IDLE RFC 2177) on top of
// emersion/go-imap v2's client.
//
// How a folder is read:
//
//   - The source position is a cursor "<uidvalidity>:<last uid>" saved by the ingest
//     pipeline in the same transaction as each message. With a valid cursor, Next returns
//     the messages with UID > last uid (RFC 9051 §2.3.1.1: UIDs only grow within one
//     UIDVALIDITY). Without one (first start) or when UIDVALIDITY changed, Next returns the
//     unseen messages; the store's dedup key catches anything seen before.
//   - Messages are fetched with BODY.PEEK[] so nothing is marked \Seen before the store has
//     committed (DESIGN.md invariant 1). Ack marks them \Seen afterwards.
//   - Batches are bounded by count and by bytes (maxBatchBytes; a larger message comes
//     alone), each body is read into one buffer of its announced size, and while the caller
//     stores a batch the next one is fetched in the background (Next), so that the server
//     works while postroom stores. Every command names messages by UID, so the background
//     FETCH and the caller's Ack (STORE, MOVE) can share the connection (RFC 9051 §5.5).
//   - go-imap v2 has no context.Context: every call closes the connection when ctx is done.
//   - A hung server is detected: the connection is dialled here and wrapped
//     (activityConn), and while a command runs, a watchdog closes it when no byte has
//     passed for Config.ReadTimeout. The waits of IDLE are exempt (a server rightly says
//     nothing there); IDLE's start and its DONE are commands like any other, and the
//     caller re-issues IDLE (Wait returns after at most idleMax).
//   - Folder names go on the wire in modified UTF-7 (RFC 3501 §5.1.3), which go-imap
//     encodes and decodes: Config.Folder and MoveFolder are plain Unicode.
//
// Logins: with the password (LOGIN), or, when Config.Token is set, with OAuth 2.0
// (AUTHENTICATE XOAUTH2 when offered, else OAUTHBEARER, RFC 7628). A refused token is
// renewed once (Token(ctx, true)) and the login tried again on a new connection, since an
// abandoned AUTHENTICATE leaves the old one in no known state. Exchange's own refusal
// ("NO AUTHENTICATE failed.", "NO LOGIN failed."; ExchangeRefusal) gets Exchange's fixes
// as advice: for a token, the service principal, FullAccess and Set-CASMailbox -ImapEnabled;
// for a password, OAuth 2.0, as Exchange Online takes no passwords.
package imap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Security settings of a mailbox.
const (
	SecurityTLS      = "tls"      // implicit TLS (imaps, port 993)
	SecurityStartTLS = "starttls" // STARTTLS on the plain port (RFC 9051 §6.2.1)
	SecurityNone     = "none"     // plain text, for loopback servers only
)

// Timeouts.
const (
	// dialTimeout bounds connecting, the TLS handshake and the greeting; a server that does
	// not greet in this time is treated as down.
	dialTimeout = 20 * time.Second
	// DefaultReadTimeout is how long a command may go without a byte from the server before
	// the server counts as hung. Dovecot delays a failed login by up to 15 s on purpose, and
	// a healthy server streams a large FETCH without pauses near this.
	DefaultReadTimeout = 2 * time.Minute
	// idleMax bounds one IDLE: RFC 2177 §3 has clients re-issue it at least every 29
	// minutes, before servers drop the connection as inactive.
	idleMax = 29 * time.Minute
	// logoutTimeout bounds the LOGOUT of Close; a server that does not answer is dropped.
	logoutTimeout = 2 * time.Second
)

// adviceTokenRefused is what an admin reads when the server refuses the OAuth token even
// after a renewal.
const adviceTokenRefused = "the server refused the OAuth token: the grant may be revoked or expired: sign in again / check the app's permissions"

// ExchangeRefusal reports whether err is Exchange's refusal of a login: "NO AUTHENTICATE
// failed." or "NO LOGIN failed.", with no response code (ms365-protocol.md §2.3, §8 item
// 10). Exchange Online says no more, whatever the cause; Dovecot and other servers say
// "NO [AUTHENTICATIONFAILED] Authentication failed." (RFC 5530), which is not this.
func ExchangeRefusal(err error) bool {
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != "" {
		return false
	}
	text := strings.TrimSpace(ie.Text)
	return strings.EqualFold(text, "AUTHENTICATE failed.") || strings.EqualFold(text, "LOGIN failed.")
}

// exchangeTokenAdvice is the advice when Exchange refuses a token even after a renewal: the
// token endpoint issued it, so the grant stands, and what is missing is on Exchange's side.
func exchangeTokenAdvice(login string) string {
	return fmt.Sprintf("Exchange refused the OAuth token for %[1]s even after postroom fetched a new one: check the app's permissions in Exchange. "+
		"Signing in as an app, its service principal must be registered in Exchange Online PowerShell "+
		"(New-ServicePrincipal -AppId <client id> -ObjectId <enterprise application object id>) and hold FullAccess on the mailbox "+
		"(Add-MailboxPermission -Identity %[1]s -User <service principal id> -AccessRights FullAccess), with the admin-consented "+
		"permission IMAP.AccessAsApp; a person who signs in needs IMAP.AccessAsUser.All and FullAccess on the mailbox if it is not their own. "+
		"IMAP must be enabled for the mailbox: Set-CASMailbox -Identity %[1]s -ImapEnabled $true; the login must be the mailbox's address. "+
		"Changes can take up to an hour to apply", login)
}

// exchangePasswordAdvice is the advice when Exchange refuses a password.
func exchangePasswordAdvice(login string) string {
	return fmt.Sprintf("Exchange refused the login %q with a password: Exchange Online (Microsoft 365) no longer accepts passwords for IMAP, "+
		"Microsoft turned off basic authentication: use OAuth 2.0 for this mailbox (Microsoft 365 sign-in); "+
		"for an Exchange server of your own, check the login name and password", login)
}

// Config says how to reach and read one IMAP folder.
type Config struct {
	Host     string
	Port     int
	Security string
	Login    string
	Password vault.Secret
	Folder   string // "INBOX" when empty
	// Cursor is the saved position ("<uidvalidity>:<uid>"), empty when none.
	Cursor string
	// AfterAction is what Ack does: store.AfterMarkRead (default), store.AfterMove (to
	// MoveFolder, created when missing) or store.AfterDelete.
	AfterAction string
	MoveFolder  string
	// MaxSize, when above 0, is the largest message fetched whole; a larger one is fetched
	// as its header only and returned with OverSize set.
	MaxSize int64
	// Token, when set, logs in with OAuth 2.0 (XOAUTH2 or OAUTHBEARER) as Login instead of
	// the password.
	Token connector.TokenFunc
	// ReadTimeout is how long a command may wait for the server without receiving a byte
	// before the connection is closed as hung; 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// RootCAs, when not nil, replaces the system's trusted roots (tests use it).
	RootCAs *x509.CertPool
	Logger  *slog.Logger
}

// Source reads one IMAP folder. It is not safe for concurrent use.
type Source struct {
	c           *imapclient.Client
	conn        *activityConn // the TCP connection under c
	readTimeout time.Duration
	folder      string
	afterAction string
	moveFolder  string
	maxSize     int64
	created     map[string]bool // folders known to exist
	uidValidity uint32
	lastUID     imap.UID // 0: no valid cursor, read unseen messages
	newMail     chan struct{}
	// ahead, when not nil, delivers the batch fetched in the background after the last
	// one Next returned (Next, Wait and Close wait for it).
	ahead chan fetched
	log   *slog.Logger
}

var (
	_ connector.Source = (*Source)(nil)
	_ connector.Waiter = (*Source)(nil)
)

// Dial connects, logs in and selects the folder. Errors are *connector.Error with advice.
func Dial(ctx context.Context, cfg Config) (*Source, error) {
	if cfg.Folder == "" {
		cfg.Folder = "INBOX"
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	switch cfg.Security {
	case SecurityTLS, SecurityStartTLS, SecurityNone, "":
	default:
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "imap connect",
			Err: fmt.Errorf("unknown security %q", cfg.Security), Advice: "set security to tls, starttls or none"}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Source{folder: cfg.Folder, afterAction: cfg.AfterAction, moveFolder: cfg.MoveFolder, maxSize: cfg.MaxSize,
		readTimeout: cfg.ReadTimeout, created: map[string]bool{}, newMail: make(chan struct{}, 1), log: log}
	attempts := 1
	if cfg.Token != nil {
		attempts = 2 // a refused token is renewed once
	}
	for attempt := range attempts {
		if err := s.connect(ctx, cfg); err != nil {
			return nil, err
		}
		var err error
		if cfg.Token != nil {
			var refused bool
			refused, err = s.loginToken(ctx, cfg, attempt > 0)
			if refused && attempt+1 < attempts {
				s.c.Close()
				s.log.Info("imap: the server refused the OAuth token; renewing it and logging in again", slog.Any("error", err))
				continue
			}
		} else {
			err = s.login(ctx, cfg.Login, cfg.Password)
		}
		if err != nil {
			s.c.Close()
			return nil, err
		}
		break
	}
	if err := s.selectFolder(ctx, cfg.Cursor); err != nil {
		s.c.Close()
		return nil, err
	}
	return s, nil
}

// connect dials, greets (with TLS as configured) and proves with NOOP that the server
// speaks IMAP.
func (s *Source) connect(ctx context.Context, cfg Config) error {
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	opts := &imapclient.Options{
		TLSConfig: &tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					s.signal()
				}
			},
		},
	}
	d := net.Dialer{Timeout: dialTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return connector.ClassifyDial("imap connect", addr, err)
	}
	conn := &activityConn{Conn: raw}
	stopCtx := context.AfterFunc(ctx, func() { raw.Close() })
	stopWatch := conn.watch(dialTimeout, func() { raw.Close() })
	var c *imapclient.Client
	switch cfg.Security {
	case SecurityTLS:
		tlsConf := opts.TLSConfig.Clone()
		tlsConf.NextProtos = []string{"imap"} // RFC 8314 §7 (ALPN "imap")
		tc := tls.Client(conn, tlsConf)
		if err = tc.HandshakeContext(ctx); err == nil {
			c = imapclient.New(tc, opts)
		}
	case SecurityStartTLS:
		c, err = imapclient.NewStartTLS(conn, opts)
	default:
		c = imapclient.New(conn, opts)
	}
	if err == nil {
		// The greeting has been read once a command completes; NOOP proves the server
		// speaks IMAP on this port.
		err = c.Noop().Wait()
	}
	stalled := stopWatch()
	ctxDone := !stopCtx()
	if err == nil && !ctxDone && !stalled {
		s.c, s.conn = c, conn
		return nil
	}
	raw.Close()
	if c != nil {
		c.Close()
	}
	switch {
	case ctxDone:
		err = ctx.Err() // a deadline reads as "did not answer in time", as before
	case stalled:
		err = fmt.Errorf("no answer in %s: %w", dialTimeout, os.ErrDeadlineExceeded)
	}
	return connector.ClassifyDial("imap connect", addr, err)
}

// withContext runs the command f and closes the connection if ctx ends first or the
// server sends nothing for readTimeout, so a hung server cannot hold the caller.
func (s *Source) withContext(ctx context.Context, f func() error) error {
	return s.guard(ctx, s.readTimeout, f)
}

// guard is withContext with a given silence limit; 0 means none (the waits of IDLE).
func (s *Source) guard(ctx context.Context, silence time.Duration, f func() error) error {
	stop := context.AfterFunc(ctx, func() { s.c.Close() })
	stopWatch := s.conn.watch(silence, func() { s.c.Close() })
	err := f()
	stalled := stopWatch()
	if !stop() {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if stalled {
		return &stalledError{silence: silence, err: err}
	}
	return err
}

// stalledError says the watchdog closed the connection.
type stalledError struct {
	silence time.Duration
	err     error // what the command returned once the connection was closed
}

func (e *stalledError) Error() string {
	return fmt.Sprintf("no answer from the server for %s (connection closed)", e.silence)
}

func (e *stalledError) Unwrap() error { return e.err }

func (s *Source) login(ctx context.Context, login string, password vault.Secret) error {
	err := s.withContext(ctx, func() error { return s.c.Login(login, password.Reveal()).Wait() })
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		advice := fmt.Sprintf("the server refused the login %q: check the login name and password of this mailbox", login)
		switch {
		case ie.Code == imap.ResponseCodeAuthorizationFailed || ie.Code == imap.ResponseCodeContactAdmin:
			advice = fmt.Sprintf("the login %q is not allowed to use IMAP: ask the mail administrator to enable IMAP access for it", login)
		case ExchangeRefusal(err):
			advice = exchangePasswordAdvice(login)
		}
		return &connector.Error{Kind: connector.KindAuth, Op: "imap login", Err: err, Advice: advice}
	}
	return s.opError("imap login", err)
}

// loginToken logs in with OAuth 2.0 as login. refused reports that the server refused the
// token (its error challenge, or NO): a renewed token may pass.
func (s *Source) loginToken(ctx context.Context, cfg Config, refresh bool) (refused bool, err error) {
	var caps imap.CapSet
	err = s.withContext(ctx, func() error {
		caps = s.c.Caps()
		if caps == nil {
			return errors.New("no capabilities")
		}
		return nil
	})
	if err != nil {
		return false, s.opError("imap capability", err)
	}
	mech := credential.PickOAuthMechanism(caps.AuthMechanisms())
	if mech == "" {
		return false, &connector.Error{Kind: connector.KindConfig, Op: "imap authenticate",
			Err:    fmt.Errorf("the server offers neither XOAUTH2 nor OAUTHBEARER (it offers %v)", caps.AuthMechanisms()),
			Advice: "the server does not accept OAuth 2.0 sign-in here: use a password for this mailbox, or the provider's OAuth IMAP host (and TLS: some servers offer it only after STARTTLS)"}
	}
	if cfg.Login == "" {
		return false, &connector.Error{Kind: connector.KindConfig, Op: "imap authenticate", Err: errors.New("no login for the OAuth sign-in"),
			Advice: "set the login of this mailbox to the account's email address"}
	}
	token, err := cfg.Token(ctx, refresh)
	if err != nil {
		return false, connector.TokenError("imap oauth token", err)
	}
	op := "imap authenticate " + mech
	err = s.withContext(ctx, func() error {
		return s.c.Authenticate(credential.NewOAuthClient(mech, cfg.Login, token, cfg.Host, cfg.Port))
	})
	if err == nil {
		return false, nil
	}
	var ce *credential.ChallengeError
	var ie *imap.Error
	switch {
	case ExchangeRefusal(err):
		return true, &connector.Error{Kind: connector.KindAuth, Op: op, Err: err, Advice: exchangeTokenAdvice(cfg.Login)}
	case errors.As(err, &ce), errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo:
		return true, &connector.Error{Kind: connector.KindAuth, Op: op, Err: err, Advice: adviceTokenRefused}
	case errors.As(err, &ie):
		return false, &connector.Error{Kind: connector.KindConfig, Op: op, Err: err,
			Advice: "the server rejected the OAuth sign-in command: check that it supports " + mech + " for IMAP"}
	}
	return false, s.opError(op, err)
}

func (s *Source) selectFolder(ctx context.Context, cursor string) error {
	var data *imap.SelectData
	err := s.withContext(ctx, func() error {
		var err error
		data, err = s.c.Select(s.folder, nil).Wait()
		return err
	})
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return &connector.Error{Kind: connector.KindConfig, Op: fmt.Sprintf("imap select %q", s.folder), Err: err,
				Advice: fmt.Sprintf("the folder %q cannot be opened: check the folder name (case matters) and that it exists", s.folder)}
		}
		return s.opError(fmt.Sprintf("imap select %q", s.folder), err)
	}
	s.uidValidity = data.UIDValidity
	if v, uid, ok := ParseCursor(cursor); ok {
		switch {
		case v == data.UIDValidity && data.UIDNext > 0 && imap.UID(uid) >= data.UIDNext:
			// The server forgot its numbering without changing UIDVALIDITY (in-memory
			// servers do): a cursor past UIDNEXT would skip every new message.
			s.log.Warn("imap cursor is past the folder's UIDNEXT: reading unseen messages again",
				slog.String("folder", s.folder), slog.Uint64("cursor_uid", uint64(uid)), slog.Uint64("uidnext", uint64(data.UIDNext)))
		case v == data.UIDValidity:
			s.lastUID = imap.UID(uid)
		default:
			s.log.Warn("imap folder was recreated (UIDVALIDITY changed): reading unseen messages again; stored copies are recognised",
				slog.String("folder", s.folder), slog.Uint64("old_uidvalidity", uint64(v)), slog.Uint64("uidvalidity", uint64(data.UIDValidity)))
		}
	}
	return nil
}

// maxBatchBytes bounds the bytes of whole messages one batch of Next holds, the batch
// fetched ahead included: a batch of small messages is many, of large ones few, and a
// single message larger than this comes alone, so that large messages are never held
// many at a time.
const maxBatchBytes = 8 << 20

// Next returns up to max messages after the cursor (or the unseen ones when there is no
// valid cursor), oldest first, fetched without setting \Seen. Each message is read into
// one buffer of its size, never copied.
//
// When more messages wait than one batch holds, Next starts fetching the next batch
// before it returns, in the background, so that the server sends it while the caller
// stores this one: the caller's Ack and SetAside may run meanwhile (go-imap pipelines
// the commands, RFC 9051 §5.5; every command here names messages by UID), and the next
// call of Next (or Wait, or Close) waits for it.
func (s *Source) Next(ctx context.Context, max int) ([]connector.Incoming, error) {
	if max < 1 {
		max = 1
	}
	var b fetched
	if s.ahead != nil {
		b = <-s.ahead
		s.ahead = nil
		if b.err == nil && len(b.msgs) == 0 && b.more {
			// The fetch ahead stopped before a message too large for what the batch
			// before left of maxBatchBytes: fetch it now, alone.
			b = s.fetchBatch(ctx, s.lastUID, max, maxBatchBytes)
		}
	} else {
		b = s.fetchBatch(ctx, s.lastUID, max, maxBatchBytes)
	}
	if b.err != nil {
		return nil, b.err
	}
	if len(b.msgs) > 0 {
		s.lastUID = b.last
	}
	if len(b.msgs) > 0 && b.more && b.bytes < maxBatchBytes {
		ch := make(chan fetched, 1)
		s.ahead = ch
		after, budget := s.lastUID, maxBatchBytes-b.bytes
		go func() { ch <- s.fetchBatch(ctx, after, max, budget) }()
	}
	return b.msgs, nil
}

// fetched is one batch read from the server.
type fetched struct {
	msgs  []connector.Incoming
	last  imap.UID // the UID of the last message in msgs
	bytes int64    // the bytes of whole messages in msgs
	more  bool     // messages after msgs wait at the server
	err   error
}

// fetchBatch fetches up to max messages with UIDs above after (the unseen ones when after
// is 0) holding at most budget bytes of whole messages, but at least one message when
// budget is maxBatchBytes (a message larger than a whole batch comes alone). It touches
// no state of s but the connection, so that it can run beside Ack.
func (s *Source) fetchBatch(ctx context.Context, after imap.UID, max int, budget int64) fetched {
	criteria := &imap.SearchCriteria{}
	if after > 0 {
		criteria.UID = []imap.UIDSet{{imap.UIDRange{Start: after + 1, Stop: 0}}}
	} else {
		criteria.NotFlag = []imap.Flag{imap.FlagSeen}
	}
	var uids []imap.UID
	err := s.withContext(ctx, func() error {
		data, err := s.c.UIDSearch(criteria, nil).Wait()
		if err != nil {
			return err
		}
		uids = data.AllUIDs()
		return nil
	})
	if err != nil {
		return fetched{err: s.opError("imap search", err)}
	}
	// "UID n:*" always matches the last message even when its UID is below n
	// (RFC 9051 §6.4.4), so filter again.
	uids = slices.DeleteFunc(uids, func(u imap.UID) bool { return u <= after })
	slices.Sort(uids)
	var res fetched
	if len(uids) > max {
		uids, res.more = uids[:max], true
	}
	if len(uids) == 0 {
		return res
	}
	// First the sizes, so that a message over the limit is not downloaded whole.
	var sizes []*imapclient.FetchMessageBuffer
	err = s.withContext(ctx, func() error {
		var err error
		sizes, err = s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true}).Collect()
		return err
	})
	if err != nil {
		return fetched{err: s.opError("imap fetch sizes", err)}
	}
	info := make(map[imap.UID]*imapclient.FetchMessageBuffer, len(sizes))
	for _, b := range sizes {
		info[b.UID] = b
	}
	// Cut the batch where the next whole message would pass the byte budget.
	var whole, headerOnly []imap.UID
	for i, uid := range uids {
		b, ok := info[uid]
		if !ok {
			continue // expunged meanwhile
		}
		if s.maxSize > 0 && b.RFC822Size > s.maxSize {
			headerOnly = append(headerOnly, uid)
			continue
		}
		if res.bytes+b.RFC822Size > budget && (len(whole) > 0 || budget < maxBatchBytes) {
			uids, res.more = uids[:i], true
			break
		}
		whole = append(whole, uid)
		res.bytes += b.RFC822Size
	}
	raw := make(map[imap.UID][]byte, len(uids))
	if err := s.fetchBodies(ctx, whole, &imap.FetchItemBodySection{Peek: true}, info, raw); err != nil {
		return fetched{err: err}
	}
	if err := s.fetchBodies(ctx, headerOnly, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}, info, raw); err != nil {
		return fetched{err: err}
	}
	res.msgs = make([]connector.Incoming, 0, len(uids))
	for _, uid := range uids {
		b, ok := info[uid]
		if !ok {
			continue // expunged meanwhile
		}
		body, ok := raw[uid]
		if !ok {
			// The server sent no body for it (expunged between the two fetches, or a
			// FETCH of its flags came first): end the batch here, so that the cursor does
			// not pass it; the next batch asks again.
			res.more = true
			break
		}
		res.msgs = append(res.msgs, connector.Incoming{
			SourceID:   SourceID(s.uidValidity, uint32(uid)),
			Raw:        body,
			Size:       b.RFC822Size,
			Cursor:     FormatCursor(s.uidValidity, uint32(uid)),
			ReceivedAt: b.InternalDate,
			OverSize:   s.maxSize > 0 && b.RFC822Size > s.maxSize,
		})
		res.last = uid
	}
	return res
}

// literalSlack is how much larger than its announced RFC822.SIZE a body may be and still
// be read into a buffer allocated at once (a server may count line ends differently).
const literalSlack = 64 << 10

// maxPrealloc bounds the buffer allocated before a body arrives: a mailbox without a Max
// size may be told of any size, and only what the server actually sends should cost
// memory. A larger body grows its buffer as it comes.
const maxPrealloc = 64 << 20

// fetchBodies fetches section of uids (BODY.PEEK: no \Seen) into raw, each into a buffer
// of the literal's size. info holds the RFC822.SIZE announced for each message: a literal
// much larger than that grows its buffer as it comes, so that a lying server cannot make
// postroom allocate what it never sends.
func (s *Source) fetchBodies(ctx context.Context, uids []imap.UID, section *imap.FetchItemBodySection, info map[imap.UID]*imapclient.FetchMessageBuffer, raw map[imap.UID][]byte) error {
	if len(uids) == 0 {
		return nil
	}
	err := s.withContext(ctx, func() error {
		cmd := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
			UID: true, BodySection: []*imap.FetchItemBodySection{section},
		})
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			var uid imap.UID
			var body []byte
			for item := msg.Next(); item != nil; item = msg.Next() {
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					uid = it.UID
				case imapclient.FetchItemDataBodySection:
					if it.Literal == nil {
						continue
					}
					var announced int64
					if b := info[uid]; b != nil {
						announced = b.RFC822Size
					}
					b, err := readLiteral(it.Literal, it.Literal.Size(), announced)
					if err != nil {
						// The literal's error released go-imap's reader goroutine: touching
						// the command again would race with it. Abandon the connection.
						s.c.Close()
						return err
					}
					body = b
				}
			}
			if uid != 0 && body != nil {
				raw[uid] = body
			}
		}
		return cmd.Close()
	})
	if err != nil {
		return s.opError("imap fetch", err)
	}
	return nil
}

// readLiteral reads a literal of size bytes whose message was announced at announced
// bytes: into one buffer of its size when that is plausible, else growing as it comes.
func readLiteral(r io.Reader, size, announced int64) ([]byte, error) {
	var b []byte
	var err error
	if size <= max(announced, 0)+literalSlack && size <= maxPrealloc {
		b = make([]byte, size)
		var n int
		n, err = io.ReadFull(r, b)
		b = b[:n]
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil // said below, with the sizes
		}
	} else {
		b, err = io.ReadAll(r)
	}
	if err == nil && int64(len(b)) != size {
		err = fmt.Errorf("message cut short after %d of %d bytes: %w", len(b), size, io.ErrUnexpectedEOF)
	}
	return b, err
}

// Ack applies the after-processing action to the messages: mark them \Seen, move them,
// or delete them. Ids of another UIDVALIDITY are skipped.
func (s *Source) Ack(ctx context.Context, sourceIDs []string) error {
	set := s.uidSet(sourceIDs)
	if len(set) == 0 {
		return nil
	}
	switch s.afterAction {
	case store.AfterMove:
		return s.move(ctx, set, s.moveFolder)
	case store.AfterDelete:
		return s.delete(ctx, set)
	default:
		return s.markSeen(ctx, set)
	}
}

// SetAside moves messages that were stored only in part (over the size limit) to the
// folder OversizeFolder, unread, so that a person finds them there whole.
func (s *Source) SetAside(ctx context.Context, sourceIDs []string) error {
	set := s.uidSet(sourceIDs)
	if len(set) == 0 {
		return nil
	}
	return s.move(ctx, set, OversizeFolder)
}

// OversizeFolder receives the messages over a mailbox's Max size.
const OversizeFolder = "Oversize"

func (s *Source) uidSet(sourceIDs []string) imap.UIDSet {
	var set imap.UIDSet
	for _, id := range sourceIDs {
		v, uid, ok := parseSourceID(id)
		if !ok || v != s.uidValidity {
			s.log.Warn("imap: message belongs to an earlier incarnation of the folder; left alone", slog.String("source_id", id))
			continue
		}
		set.AddNum(imap.UID(uid))
	}
	return set
}

func (s *Source) markSeen(ctx context.Context, set imap.UIDSet) error {
	return s.addFlag(ctx, set, imap.FlagSeen, "imap store \\Seen")
}

func (s *Source) addFlag(ctx context.Context, set imap.UIDSet, flag imap.Flag, op string) error {
	err := s.withContext(ctx, func() error {
		return s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{flag}}, nil).Close()
	})
	if err != nil {
		return s.opError(op, err)
	}
	return nil
}

// delete flags the messages \Deleted and expunges them (only them with UIDPLUS, RFC 4315).
func (s *Source) delete(ctx context.Context, set imap.UIDSet) error {
	if err := s.addFlag(ctx, set, imap.FlagDeleted, "imap store \\Deleted"); err != nil {
		return err
	}
	err := s.withContext(ctx, func() error {
		if s.c.Caps().Has(imap.CapUIDPlus) {
			return s.c.UIDExpunge(set).Close()
		}
		return s.c.Expunge().Close()
	})
	if err != nil {
		return s.opError("imap expunge", err)
	}
	return nil
}

// move moves the messages to folder (RFC 6851 MOVE, or COPY then delete), creating the
// folder when it is missing.
func (s *Source) move(ctx context.Context, set imap.UIDSet, folder string) error {
	if err := s.ensureFolder(ctx, folder); err != nil {
		return err
	}
	op := fmt.Sprintf("imap move to %q", folder)
	if s.c.Caps().Has(imap.CapMove) {
		err := s.withContext(ctx, func() error {
			_, err := s.c.Move(set, folder).Wait()
			return err
		})
		if err != nil {
			return s.opError(op, err)
		}
		return nil
	}
	err := s.withContext(ctx, func() error {
		_, err := s.c.Copy(set, folder).Wait()
		return err
	})
	if err != nil {
		return s.opError(op, err)
	}
	return s.delete(ctx, set)
}

// ensureFolder creates folder unless it exists (an ALREADYEXISTS answer is fine).
func (s *Source) ensureFolder(ctx context.Context, folder string) error {
	if s.created[folder] {
		return nil
	}
	var exists bool
	err := s.withContext(ctx, func() error {
		list, err := s.c.List("", folder, nil).Collect()
		exists = err == nil && len(list) > 0
		return err
	})
	if err != nil {
		return s.opError(fmt.Sprintf("imap list %q", folder), err)
	}
	if !exists {
		err := s.withContext(ctx, func() error { return s.c.Create(folder, nil).Wait() })
		var ie *imap.Error
		if err != nil && !(errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists) {
			return &connector.Error{Kind: connector.KindConfig, Op: fmt.Sprintf("imap create %q", folder), Err: err,
				Advice: fmt.Sprintf("the folder %q is missing and cannot be created: create it on the server or choose another folder", folder)}
		}
		s.log.Info("imap folder created", slog.String("folder", folder))
	}
	s.created[folder] = true
	return nil
}

// Wait waits with IDLE (when the server offers it) until new mail arrives, max passes or
// ctx is done; max is cut to idleMax, so the caller re-issues IDLE in time. Without IDLE
// it just sleeps, and the caller polls. The wait itself is exempt from ReadTimeout; the
// IDLE command and its DONE are not.
func (s *Source) Wait(ctx context.Context, max time.Duration) error {
	if s.ahead != nil {
		b := <-s.ahead
		if b.err != nil || len(b.msgs) > 0 || b.more {
			s.ahead = make(chan fetched, 1)
			s.ahead <- b
			return nil // there is mail (or an error) for Next already
		}
		s.ahead = nil
	}
	select {
	case <-s.newMail:
		return nil
	default:
	}
	timer := time.NewTimer(min(max, idleMax))
	defer timer.Stop()
	if !s.c.Caps().Has(imap.CapIdle) {
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
		return nil
	}
	var idle *imapclient.IdleCommand
	err := s.withContext(ctx, func() error {
		var err error
		idle, err = s.c.Idle()
		return err
	})
	if err != nil {
		return s.opError("imap idle", err)
	}
	select {
	case <-s.newMail:
	case <-timer.C:
	case <-ctx.Done():
	case <-s.c.Closed():
	}
	err = s.withContext(context.WithoutCancel(ctx), func() error {
		if err := idle.Close(); err != nil {
			return err
		}
		return idle.Wait()
	})
	if err != nil {
		return s.opError("imap idle done", err)
	}
	return nil
}

func (s *Source) signal() {
	select {
	case s.newMail <- struct{}{}:
	default:
	}
}

func (s *Source) opError(op string, err error) error {
	var ie *imap.Error
	var se *stalledError
	var ce *connector.Error
	switch {
	case errors.As(err, &ce):
		return err
	case errors.As(err, &se):
		return &connector.Error{Kind: connector.KindNetwork, Op: op, Err: err,
			Advice: fmt.Sprintf("the server stopped answering (nothing for %s in the middle of a command); postroom closed the connection and reconnects", se.silence)}
	case errors.As(err, &ie):
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: err,
			Advice: "the server refused the command; it is retried: if it persists, check the server's log"}
	}
	return &connector.Error{Kind: connector.KindNetwork, Op: op, Err: err,
		Advice: "the connection to the server broke; postroom reconnects by itself"}
}

// Close logs out and closes the connection.
func (s *Source) Close() error {
	done := make(chan error, 1)
	go func() { done <- s.c.Logout().Wait() }()
	select {
	case <-done:
	case <-time.After(logoutTimeout):
	}
	err := s.c.Close()
	if s.ahead != nil {
		<-s.ahead // ends at once on the closed connection
		s.ahead = nil
	}
	return err
}

// SourceID is the dedup key of an IMAP message: "imap:<uidvalidity>:<uid>".
func SourceID(uidValidity, uid uint32) string {
	return fmt.Sprintf("imap:%d:%d", uidValidity, uid)
}

func parseSourceID(id string) (uidValidity, uid uint32, ok bool) {
	rest, found := strings.CutPrefix(id, "imap:")
	if !found {
		return 0, 0, false
	}
	return ParseCursor(rest)
}

// FormatCursor formats a cursor "<uidvalidity>:<uid>".
func FormatCursor(uidValidity, uid uint32) string {
	return fmt.Sprintf("%d:%d", uidValidity, uid)
}

// ParseCursor parses "<uidvalidity>:<uid>".
func ParseCursor(c string) (uidValidity, uid uint32, ok bool) {
	a, b, found := strings.Cut(c, ":")
	if !found {
		return 0, 0, false
	}
	v, err1 := strconv.ParseUint(a, 10, 32)
	u, err2 := strconv.ParseUint(b, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint32(v), uint32(u), true
}
