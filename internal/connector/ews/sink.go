package ews

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/postroom/postroom/internal/connector"
)

// Sink sends messages through one mailbox with CreateItem (MessageDisposition
// SendAndSaveCopy, the message as MimeContent): Exchange sends the MIME as it is, so the
// threading headers (Message-ID, In-Reply-To, References) stay, and keeps a copy in Sent
// Items. Recipients of the envelope that are not in To or Cc go as BccRecipients.
type Sink struct {
	c *client
}

var _ connector.Sink = (*Sink)(nil)

// NewSink makes a Sink of cfg (URL, Mailbox, sign-in, HTTPClient, Logger); no request.
func NewSink(cfg Config) (*Sink, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Sink{c: c}, nil
}

// Send sends raw to recipients from the mailbox. from must be the mailbox or an address it
// may send as; Exchange checks that.
func (s *Sink) Send(ctx context.Context, from string, recipients []string, raw []byte) error {
	if len(recipients) == 0 {
		return &connector.Error{Kind: connector.KindRejected, Op: "ews send", Err: errors.New("no recipients"), Advice: "the message has no recipients"}
	}
	inHeader := map[string]bool{}
	if m, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		for _, h := range []string{"To", "Cc"} {
			list, _ := m.Header.AddressList(h)
			for _, a := range list {
				inHeader[strings.ToLower(a.Address)] = true
			}
		}
	}
	var bcc []string
	for _, r := range recipients {
		if !inHeader[strings.ToLower(r)] {
			bcc = append(bcc, r)
		}
	}
	mime := base64.StdEncoding.EncodeToString(raw)
	body := func() string {
		var b strings.Builder
		b.WriteString(`<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:SavedItemFolderId>` + s.c.folderID("sentitems") + `</m:SavedItemFolderId><m:Items><t:Message><t:MimeContent CharacterSet="UTF-8">`)
		b.WriteString(mime)
		b.WriteString(`</t:MimeContent>`)
		if len(bcc) > 0 {
			b.WriteString(`<t:BccRecipients>`)
			for _, r := range bcc {
				b.WriteString(`<t:Mailbox><t:EmailAddress>` + esc(r) + `</t:EmailAddress></t:Mailbox>`)
			}
			b.WriteString(`</t:BccRecipients>`)
		}
		b.WriteString(`</t:Message></m:Items></m:CreateItem>`)
		return b.String()
	}
	return s.c.classify("ews send", s.c.orImpersonate(func() error { return s.create(ctx, body()) }))
}

// create posts one CreateItem; the body is built again for each try, since the folder id
// names the mailbox only without impersonation.
func (s *Sink) create(ctx context.Context, body string) error {
	resp, err := s.c.call(ctx, "CreateItem", body, transferTimeout)
	if err != nil {
		return err
	}
	msgs, errs := responseMessages(resp)
	if len(msgs) != 1 {
		return &connector.Error{Kind: connector.KindServer, Op: "ews send", Err: fmt.Errorf("%d answers to one message", len(msgs)),
			Advice: "Exchange answered CreateItem in a way postroom cannot follow"}
	}
	return errs[0]
}

// Requests is the number of HTTP requests the Sink made.
func (s *Sink) Requests() int64 { return s.c.requests.Load() }

// Close releases the Sink.
func (s *Sink) Close() error { return nil }
