package ingest

import (
	"context"
	"log/slog"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/gmail"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
)

// dialGmail opens the Gmail API source of m: the historyId cursor, Skip asking the store,
// and a round's cursor without a message saved under the loop's fence.
func (r *Runner) dialGmail(ctx context.Context, m store.Mailbox, cursor string, token connector.TokenFunc, log *slog.Logger) (connector.Source, error) {
	fence := fenceOf(ctx)
	return gmail.Open(ctx, gmail.Config{
		BaseURL: credential.GmailBaseURL(m), Mailbox: m.Address, Label: m.Folder, Cursor: cursor,
		AfterAction: m.AfterAction, MoveLabel: m.MoveFolder, MaxSizeBytes: maxSize(m),
		Token: token, HTTPClient: r.opts.HTTPClient, Logger: log,
		Skip: func(sourceID string) bool {
			_, err := r.opts.Store.MessageBySource(ctx, m.ID, sourceID)
			return err == nil
		},
		SaveCursor: func(ctx context.Context, c string) error {
			return r.opts.Store.SetCursor(ctx, store.Cursor{MailboxID: m.ID, Value: c, Fence: fence})
		},
	})
}
