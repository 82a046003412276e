package outbound

import (
	"context"
	"log/slog"
	"slices"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/gmail"
	"github.com/postroom/postroom/internal/connector/smtp"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
)

// sendGmail sends through the Gmail API (users.messages.send): Gmail takes the recipients
// from the message's own headers and accepts or refuses it for all of them at once.
func (s *Sender) sendGmail(ctx context.Context, m store.Mailbox, it store.OutboxItem) (smtp.Result, error) {
	var token connector.TokenFunc
	if s.opts.Tokens != nil {
		token = s.opts.Tokens(m)
	}
	sink, err := gmail.NewSink(gmail.Config{BaseURL: credential.GmailBaseURL(m), Mailbox: m.Address, Token: token,
		HTTPClient: s.opts.HTTPClient, Logger: s.log.With(slog.String("mailbox", m.Name), slog.Int64("outbox_id", it.ID))})
	if err != nil {
		return smtp.Result{}, err
	}
	defer sink.Close()
	if err := sink.Send(ctx, it.From, it.Recipients, it.Raw); err != nil {
		return smtp.Result{}, err
	}
	return smtp.Result{Accepted: slices.Clone(it.Recipients), Transactions: 1}, nil
}
