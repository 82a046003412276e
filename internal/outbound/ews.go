package outbound

import (
	"context"
	"log/slog"
	"slices"

	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/connector/smtp"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// sendEWS sends through Exchange Web Services: CreateItem with the composed MIME as it is
// (threading headers kept) and SendAndSaveCopy, so the copy lands in Sent Items. Exchange
// accepts or refuses the message for all its recipients at once. An attempt whose answer
// was lost is sent again (EWS has no draft id to look up here).
func (s *Sender) sendEWS(ctx context.Context, m store.Mailbox, it store.OutboxItem) (smtp.Result, error) {
	cfg := ews.Config{URL: mailbox.EWSURL(m), Mailbox: m.Address, Login: m.Login, HTTPClient: s.opts.HTTPClient,
		Logger: s.log.With(slog.String("mailbox", m.Name), slog.Int64("outbox_id", it.ID))}
	if m.Auth == store.AuthPassword {
		password, err := s.opts.Passwords.Get(ctx, m.ID)
		if err != nil {
			return smtp.Result{}, err
		}
		cfg.Password = password
	} else if s.opts.Tokens != nil {
		cfg.Token = s.opts.Tokens(m)
	}
	sink, err := ews.NewSink(cfg)
	if err != nil {
		return smtp.Result{}, err
	}
	defer sink.Close()
	if err := sink.Send(ctx, it.From, it.Recipients, it.Raw); err != nil {
		return smtp.Result{}, err
	}
	return smtp.Result{Accepted: slices.Clone(it.Recipients), Transactions: 1}, nil
}
