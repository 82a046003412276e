package gmail

import (
	"context"
	"encoding/base64"

	"github.com/postroom/postroom/internal/connector"
)

// Sink sends through users.messages.send.
type Sink struct{ c *client }

var _ connector.Sink = (*Sink)(nil)

// NewSink returns a Sink. It does no I/O.
func NewSink(cfg Config) (*Sink, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Sink{c: c}, nil
}

// Send sends raw as it is; Gmail takes the recipients from its To, Cc and Bcc headers.
// It returns the id Gmail gave the sent copy.
func (k *Sink) Send(ctx context.Context, from string, recipients []string, raw []byte) error {
	_, err := k.SendID(ctx, raw)
	return err
}

// SendID sends raw and returns the id of the sent copy.
func (k *Sink) SendID(ctx context.Context, raw []byte) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := k.c.do(ctx, opSend, "POST", "/messages/send", nil, map[string]string{"raw": base64.URLEncoding.EncodeToString(raw)}, &out)
	return out.ID, err
}

// Close releases nothing.
func (k *Sink) Close() error { return nil }
