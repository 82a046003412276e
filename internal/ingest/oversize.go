package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/textproto"

	"github.com/postroom/postroom/internal/automsg"
	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/store"
)

// composer returns the writer of automatic messages: Options.AutoMessages, or one on the
// store with the runner's clock (every queue's calendar open).
func (r *Runner) composer() *automsg.Composer {
	if r.opts.AutoMessages != nil {
		return r.opts.AutoMessages
	}
	return &automsg.Composer{Store: r.opts.Store, Now: r.opts.Now, Log: r.log}
}

// autoReply returns the automatic message to the sender of inbound, if any: the notice
// for a message over the mailbox's Max size, else the queue's acknowledgement (sent by
// the store only when the message starts a conversation, within the limits). A program's
// mail gets none (RFC 3834 §2). A failure to write it costs the answer, never the
// customer's message.
func (r *Runner) autoReply(ctx context.Context, m store.Mailbox, in connector.Incoming, inbound *store.InboundMessage) *store.AutoReply {
	if inbound.Message.Automatic != "" {
		if in.OverSize {
			r.log.Info("no over-size notice: the message is automatic", slog.String("source_id", in.SourceID),
				slog.String("reason", inbound.Message.Automatic))
		}
		return nil
	}
	var a *store.AutoReply
	var err error
	if in.OverSize {
		a, err = r.composer().Oversize(ctx, m, inbound.Message, in.Size)
	} else {
		a, err = r.composer().Acknowledgement(ctx, m, inbound)
	}
	if err != nil {
		r.log.Warn("no automatic message to the sender", slog.String("source_id", in.SourceID), slog.Any("error", err))
		return nil
	}
	return a
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
