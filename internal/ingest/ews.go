package ingest

import (
	"context"
	"log/slog"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// dialEWS opens the EWS source of mailbox m: Basic sign-in with the password, or the OAuth
// token when the mailbox signs in with OAuth. Stored messages are skipped (dedup after an
// invalid sync state), and a page of changes without a new message saves its sync state.
func (r *Runner) dialEWS(ctx context.Context, m store.Mailbox, cursor string, password vault.Secret, token connector.TokenFunc, log *slog.Logger) (connector.Source, error) {
	cfg := ews.Config{
		URL: mailbox.EWSURL(m), Mailbox: m.Address, Login: m.Login, Password: password,
		Folder: m.Folder, Cursor: cursor, AfterAction: m.AfterAction, MoveFolder: m.MoveFolder, MaxSizeBytes: maxSize(m),
		HTTPClient: r.opts.HTTPClient, Logger: log,
	}
	if m.Auth != store.AuthPassword {
		cfg.Token = token
	}
	cfg.Skip = func(sourceID string) bool {
		_, err := r.opts.Store.MessageBySource(ctx, m.ID, sourceID)
		return err == nil
	}
	fence := fenceOf(ctx)
	cfg.SaveCursor = func(ctx context.Context, c string) error {
		return r.opts.Store.SetCursor(ctx, store.Cursor{MailboxID: m.ID, Value: c, Fence: fence})
	}
	return ews.Open(ctx, cfg)
}
