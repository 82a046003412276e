package localserver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// AppendManyContext stores raws in the
// user's mailbox in order with MULTIAPPEND, creating the mailbox if needed.
func (d *Dovecot) AppendManyContext(ctx context.Context, user, mailbox string, raws [][]byte) error {
	if len(raws) == 0 {
		return nil
	}
	return d.appendMany(ctx, user, mailbox, raws)
}

// MessagesContext lists the messages in the user's mailbox (every mailbox if mailbox is ""),
// in mailbox order and ascending UID, from doveadm -f json fetch.
func (d *Dovecot) MessagesContext(ctx context.Context, user, mailbox string) ([]DovecotMessage, error) {
	return d.messages(ctx, user, mailbox)
}

// Doveadm runs doveadm against this instance with args (for example "search", "-u", USER,
// "mailbox", "INBOX", "SEEN") and returns its standard output; stdin may be nil.
func (d *Dovecot) Doveadm(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	return d.runDoveadm(ctx, stdin, args...)
}

// LogPath is the file Dovecot logs to.
func (d *Dovecot) LogPath() string { return d.logPath }

// DovecotSession is one connection Dovecot's anvil knows of, as `doveadm who -1` lists it.
type DovecotSession struct {
	User    string // the logged-in user name
	Service string // imap, pop3, …
	PID     int    // the mail process serving it
	IP      string // the client's address; empty for a doveadm exec session
}

// SessionsContext lists the sessions logged in at Dovecot now (`doveadm who -1`: one line
// per connection). Sessions of doveadm itself (AppendMany's doveadm exec imap) have no IP
// and are left out, so what remains are real clients such as postroom's ingest.
func (d *Dovecot) SessionsContext(ctx context.Context) ([]DovecotSession, error) {
	out, err := d.runDoveadm(ctx, nil, "who", "-1")
	if err != nil {
		return nil, err
	}
	var sessions []DovecotSession
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 { // the header: username proto pid ip …
			continue
		}
		pid, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("doveadm who line %q: pid: %w", line, err)
		}
		s := DovecotSession{User: f[0], Service: f[1], PID: pid}
		if len(f) > 3 {
			s.IP = f[3]
		}
		if s.IP == "" {
			continue
		}
		sessions = append(sessions, s)
	}
	return sessions, nil
}
