package demo

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// idlePollInterval is how often an idling session looks for changes that did
// not come through mailStore.deliver or this server's APPEND (flag changes by
// other connections). New mail is reported at once. RFC 2177 sets no bound;
// one second keeps a demo UI lively at no real cost (in-memory queues).
const idlePollInterval = time.Second

// specialFolder is an extra IMAP folder and its RFC 6154 attribute.
type specialFolder struct {
	name string
	attr imap.MailboxAttr
}

// supportFolders are the extra folders of the support login, so that a
// client can move processed mail away.
var supportFolders = []specialFolder{
	{"Archive", imap.MailboxAttrArchive},
	{"Sent", imap.MailboxAttrSent},
	{"Trash", imap.MailboxAttrTrash},
}

// mailStore is the in-memory mail of one demo server: the IMAP users, fixed
// after Start, and a signal for idling sessions.
type mailStore struct {
	users   map[string]*imapmemserver.User
	changes changeNotifier
}

func newMailStore(password string) (*mailStore, error) {
	support, err := newDemoUser(SupportLogin, password, supportFolders...)
	if err != nil {
		return nil, err
	}
	customers, err := newDemoUser(CustomersLogin, password)
	if err != nil {
		return nil, err
	}
	return &mailStore{users: map[string]*imapmemserver.User{
		SupportLogin:   support,
		CustomersLogin: customers,
	}}, nil
}

// newDemoUser creates an in-memory IMAP user with an INBOX and the given
// special-use folders.
func newDemoUser(login, password string, folders ...specialFolder) (*imapmemserver.User, error) {
	u := imapmemserver.NewUser(login, password)
	if err := u.Create(inboxName, nil); err != nil {
		return nil, fmt.Errorf("demo create %s for %s: %w", inboxName, login, err)
	}
	if err := u.Subscribe(inboxName); err != nil {
		return nil, fmt.Errorf("demo subscribe %s for %s: %w", inboxName, login, err)
	}
	for _, f := range folders {
		if err := u.Create(f.name, &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{f.attr}}); err != nil {
			return nil, fmt.Errorf("demo create %s for %s: %w", f.name, login, err)
		}
		if err := u.Subscribe(f.name); err != nil {
			return nil, fmt.Errorf("demo subscribe %s for %s: %w", f.name, login, err)
		}
	}
	return u, nil
}

// deliver stores raw in the INBOX of login with the given internal date
// (RFC 3501 §2.3.3) and wakes idling sessions, which then send EXISTS
// (RFC 3501 §7.3.1).
func (m *mailStore) deliver(login string, raw []byte, date time.Time) (*imap.AppendData, error) {
	u := m.users[login]
	if u == nil {
		return nil, fmt.Errorf("demo deliver: no mailbox user %q", login)
	}
	data, err := u.Append(inboxName, bytes.NewReader(raw), &imap.AppendOptions{Time: date})
	if err != nil {
		return nil, fmt.Errorf("imap append to %s of %s: %w", inboxName, login, err)
	}
	m.changes.notify()
	return data, nil
}

// changeNotifier wakes every waiter once per notify: waiters take the
// current channel, notify closes it and starts a new one.
type changeNotifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *changeNotifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *changeNotifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// newIMAPServer serves store over plaintext IMAP (no TLS: loopback demo).
func newIMAPServer(store *mailStore, log *slog.Logger) *imapserver.Server {
	return imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			remote := c.NetConn().RemoteAddr().String()
			log.Debug("imap connection", slog.String("remote_addr", remote))
			return &imapSession{store: store, log: log.With(slog.String("remote_addr", remote))}, nil, nil
		},
		// IMAP4rev1 also advertises IDLE, UNSELECT, ENABLE (imapserver adds
		// them); the rest are implemented by imapmemserver.
		Caps: imap.CapSet{
			imap.CapIMAP4rev1:  {},
			imap.CapUIDPlus:    {},
			imap.CapMove:       {},
			imap.CapNamespace:  {},
			imap.CapSpecialUse: {},
		},
		Logger:       printfLogger{log},
		InsecureAuth: true, // LOGIN without TLS: the demo listens on loopback
	})
}

// imapSession is one IMAP connection. imapmemserver does the mailbox work;
// this type adds login against the demo users, logging, and an IDLE that
// cannot miss mail delivered while the command starts.
type imapSession struct {
	*imapmemserver.UserSession // nil until LOGIN succeeds

	store *mailStore
	log   *slog.Logger
}

var (
	_ imapserver.SessionIMAP4rev2 = (*imapSession)(nil)
	_ imapserver.SessionMove      = (*imapSession)(nil)
	_ imapserver.SessionNamespace = (*imapSession)(nil)
)

func (s *imapSession) Login(username, password string) error {
	u := s.store.users[username]
	if u == nil {
		s.log.Warn("imap login failed: unknown user", slog.String("username", username))
		return imapserver.ErrAuthFailed
	}
	if err := u.Login(username, password); err != nil {
		s.log.Warn("imap login failed: wrong password", slog.String("username", username))
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(u)
	s.log.Debug("imap login", slog.String("username", username))
	return nil
}

func (s *imapSession) Close() error {
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

// Append stores a message a client uploads and wakes idling sessions.
func (s *imapSession) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	data, err := s.UserSession.Append(mailbox, r, options)
	if err == nil {
		s.store.changes.notify()
	}
	return data, err
}

// Idle reports mailbox changes until stop is closed (RFC 2177). It replaces
// imapmemserver's IDLE, which only wakes on changes queued after it started
// and so misses a message delivered while the IDLE command is being set up.
// Here the wake-up channel is taken before each poll, so a delivery either
// is in the queue being polled or closes the channel.
func (s *imapSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	ticker := time.NewTicker(idlePollInterval)
	defer ticker.Stop()
	for {
		changed := s.store.changes.wait()
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-ticker.C:
		case <-stop:
			return nil
		}
	}
}
