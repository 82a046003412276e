package localserver

import (
	"context"
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
