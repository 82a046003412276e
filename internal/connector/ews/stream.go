package ews

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/postroom/postroom/internal/connector"
)

// subscribeRetry is how long Wait polls before it tries to subscribe again after Exchange
// refused a streaming subscription.
const subscribeRetry = 5 * time.Minute

var _ connector.Waiter = (*Source)(nil)

// Wait returns when Exchange reports new mail in the folder (a streaming subscription:
// Subscribe, then GetStreamingEvents held open), when limit has passed, or when ctx is done.
// Without a subscription (Exchange refused one, or it was lost) it waits limit: the folder is
// polled. A new subscription returns at once, so that mail that came before it is read.
func (s *Source) Wait(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if s.subID == "" {
		if time.Now().Before(s.noSubUntil) {
			<-ctx.Done()
			return nil
		}
		id, err := s.subscribe(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Info("ews: no streaming subscription; the folder is polled", slog.Any("error", err))
				s.noSubUntil = time.Now().Add(subscribeRetry)
				<-ctx.Done()
			}
			return nil
		}
		s.subID = id
		return nil
	}
	minutes := min(max(int((limit+time.Minute-1)/time.Minute), 1), 30)
	err := s.streamEvents(ctx, minutes)
	switch {
	case err == nil || ctx.Err() != nil:
	case Code(err) == "ErrorSubscriptionNotFound" || Code(err) == "ErrorInvalidSubscription" || Code(err) == "ErrorExpiredSubscription":
		s.log.Info("ews: the streaming subscription is gone; subscribing again", slog.String("code", Code(err)))
		s.subID = ""
	default:
		// The connection broke or Exchange answered with an error: fall back to one poll
		// interval, then try the same subscription again.
		s.log.Info("ews: streaming notifications failed; polling meanwhile", slog.Any("error", err))
		<-ctx.Done()
	}
	return nil
}

// subscribe makes a streaming subscription to new mail in the folder.
func (s *Source) subscribe(ctx context.Context) (string, error) {
	body := `<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>` + s.c.folderID(s.folder) + `</t:FolderIds>` +
		`<t:EventTypes><t:EventType>NewMailEvent</t:EventType><t:EventType>CreatedEvent</t:EventType><t:EventType>MovedEvent</t:EventType></t:EventTypes>` +
		`</m:StreamingSubscriptionRequest></m:Subscribe>`
	resp, err := s.c.call(ctx, "Subscribe", body, requestTimeout)
	if err != nil {
		return "", err
	}
	msgs, errs := responseMessages(resp)
	if len(msgs) != 1 {
		return "", errors.New("ews: Subscribe answered without one response message")
	}
	if errs[0] != nil {
		return "", errs[0]
	}
	id := msgs[0].kid("SubscriptionId").text()
	if id == "" {
		return "", errors.New("ews: Subscribe answered without a SubscriptionId")
	}
	return id, nil
}

// streamEvents opens GetStreamingEvents and reads its envelopes until one brings an event
// (nil), Exchange closes the connection (ConnectionStatus Closed: nil), or an error.
func (s *Source) streamEvents(ctx context.Context, minutes int) error {
	env := s.c.envelope(`<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>` + esc(s.subID) + `</t:SubscriptionId></m:SubscriptionIds>` +
		`<m:ConnectionTimeout>` + strconv.Itoa(minutes) + `</m:ConnectionTimeout></m:GetStreamingEvents>`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.url, bytes.NewReader(env))
	if err != nil {
		return fmt.Errorf("ews request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	if s.c.token != nil {
		tok, err := s.c.token(ctx, false)
		if err != nil {
			return connector.TokenError("ews oauth token", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	} else {
		req.SetBasicAuth(s.c.login, s.c.password.Reveal())
	}
	s.c.requests.Add(1)
	resp, err := s.c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ews streaming events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Status: resp.StatusCode}
	}
	d := xml.NewDecoder(io.LimitReader(resp.Body, maxResponse))
	for {
		root, err := nextEnvelope(d)
		if err != nil {
			return fmt.Errorf("ews streaming events: %w", err)
		}
		body := root.kid("Body")
		if body == nil || len(body.Kids) == 0 {
			continue
		}
		msgs, errs := responseMessages(body.Kids[0])
		for i, m := range msgs {
			if errs[i] != nil {
				return errs[i]
			}
			if n := m.kid("Notifications"); n != nil && len(n.Kids) > 0 {
				return nil
			}
			if m.kid("ConnectionStatus").text() == "Closed" {
				return nil
			}
		}
	}
}

// nextEnvelope reads the next whole element (an Envelope) from a stream of envelopes.
func nextEnvelope(d *xml.Decoder) (*node, error) {
	var stack []*node
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{Space: t.Name.Space, Local: t.Name.Local, Attrs: map[string]string{}}
			for _, a := range t.Attr {
				n.Attrs[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Kids = append(p.Kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, errors.New("unbalanced XML")
			}
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return n, nil
			}
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(t)
			}
		}
	}
}
