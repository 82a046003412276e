package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"net/textproto"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// oversizeNotice composes the polite notice to the sender of a message over the mailbox's
// Max size, sent from the default outbound mailbox. It returns nil (no notice) when the
// message is itself automatic (RFC 3834 §2) or when there is no outbound mailbox.
func (r *Runner) oversizeNotice(ctx context.Context, m store.Mailbox, in connector.Incoming, parsed store.Message) (*store.AutoReply, error) {
	from := parsed.ReplyTo // the address the notice would go to
	if from == "" {
		from = parsed.FromAddr
	}
	reason := message.Automatic(message.Header(in.Raw), from)
	if reason == "" && from == "" {
		reason = "no sender address"
	}
	if reason != "" {
		r.log.Info("no over-size notice: the message is automatic", slog.String("source_id", in.SourceID), slog.String("reason", reason))
		return nil, nil
	}
	boxes, err := r.opts.Store.ListMailboxes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	out, ok := mailbox.DefaultOutbound(boxes)
	if !ok {
		r.log.Warn("no over-size notice: no outbound mailbox is configured", slog.Int64("mailbox_id", m.ID))
		return nil, nil
	}
	to := m.Address
	if to == "" {
		to = "our support mailbox"
	}
	subject := parsed.Subject
	if subject == "" {
		subject = "(no subject)"
	}
	text := fmt.Sprintf("Hello,\n\n"+
		"thank you for your message %q to %s. It is %s, larger than the %d MB we can accept, "+
		"so it has not reached our team in full.\n\n"+
		"Please send it again with smaller attachments: for example, share large files as a link, "+
		"or split them over several emails.\n\n"+
		"Your message has been kept, and a supervisor has been told.\n\n"+
		"This is an automatic message.\n", subject, to, formatMB(in.Size), m.MaxSizeMB)
	draft := message.ReplyDraft(parsed, mail.Address{Address: out.Address}, text, r.opts.Now())
	draft.Text = text // no quoted original: only its header was stored
	draft.AutoSubmitted = true
	raw, msg, err := message.Compose(draft)
	if err != nil {
		r.log.Warn("no over-size notice: cannot compose it", slog.String("source_id", in.SourceID), slog.Any("error", err))
		return nil, nil
	}
	msg.MailboxID = out.ID
	msg.Direction = store.Outbound
	var rcpts []string
	for _, a := range draft.To {
		rcpts = append(rcpts, a.Address)
	}
	if len(rcpts) == 0 {
		return nil, nil
	}
	return &store.AutoReply{Message: msg, Raw: raw, From: out.Address, Recipients: rcpts}, nil
}

// formatMB prints a size like "6.1 MB".
func formatMB(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

// headerReads reports whether raw (the header of an over-size message) is a readable
// header block (RFC 5322 §2.2).
func headerReads(raw []byte) bool {
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
	return err == nil || (errors.Is(err, io.EOF) && len(h) > 0)
}
