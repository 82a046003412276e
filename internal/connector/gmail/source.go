package gmail

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/connector"
)

// SourcePrefix begins every Incoming.SourceID of this connector.
const SourcePrefix = "gmail:"

// Source reads one Gmail mailbox. It is not safe for concurrent use.
type Source struct {
	c      *client
	cursor string // the historyId of the last finished round

	pending    []string // message ids of the current round not handed out yet
	nextCursor string   // the cursor after the current round
}

var (
	_ connector.Source = (*Source)(nil)
	_ connector.Waiter = (*Source)(nil)
)

// Open checks the sign-in (users.getProfile) and returns a Source.
func Open(ctx context.Context, cfg Config) (*Source, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	var p profile
	if err := c.do(ctx, "gmail profile", "GET", "/profile", nil, nil, &p); err != nil {
		return nil, err
	}
	return &Source{c: c, cursor: cfg.Cursor}, nil
}

type profile struct {
	EmailAddress string `json:"emailAddress"`
	HistoryID    string `json:"historyId"`
}

type ref struct {
	ID string `json:"id"`
}

// Next returns up to max messages of the current round, starting a round when none is
// under way.
func (s *Source) Next(ctx context.Context, max int) ([]connector.Incoming, error) {
	if max <= 0 {
		max = 1
	}
	if len(s.pending) == 0 {
		if err := s.round(ctx); err != nil {
			return nil, err
		}
		if len(s.pending) == 0 {
			if s.nextCursor != "" && s.nextCursor != s.cursor {
				if s.c.cfg.SaveCursor != nil {
					if err := s.c.cfg.SaveCursor(ctx, s.nextCursor); err != nil {
						return nil, fmt.Errorf("save the gmail cursor: %w", err)
					}
				}
				s.cursor = s.nextCursor
			}
			return nil, nil
		}
	}
	var out []connector.Incoming
	for len(out) < max && len(s.pending) > 0 {
		id := s.pending[0]
		in, gone, err := s.fetch(ctx, id)
		if err != nil {
			return out, err
		}
		s.pending = s.pending[1:]
		if gone {
			continue
		}
		out = append(out, in)
	}
	if len(s.pending) == 0 {
		if len(out) > 0 {
			out[len(out)-1].Cursor = s.nextCursor
		} else if s.c.cfg.SaveCursor != nil && s.nextCursor != s.cursor {
			if err := s.c.cfg.SaveCursor(ctx, s.nextCursor); err != nil {
				return nil, fmt.Errorf("save the gmail cursor: %w", err)
			}
		}
		s.cursor = s.nextCursor
	}
	return out, nil
}

// round lists what arrived since the cursor (or everything, without one or when Gmail no
// longer keeps its history) into pending, and the cursor after it into nextCursor.
func (s *Source) round(ctx context.Context) error {
	var ids []string
	var next string
	var err error
	if s.cursor != "" {
		ids, next, err = s.history(ctx)
		if isNotFound(err) {
			s.c.log.Warn("gmail: the saved historyId is too old for Gmail; reading the whole label again (nothing is stored twice)",
				slog.String("history_id", s.cursor))
			ids, next, err = s.full(ctx)
		}
	} else {
		ids, next, err = s.full(ctx)
	}
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	s.pending = s.pending[:0]
	for _, id := range ids {
		if seen[id] || (s.c.cfg.Skip != nil && s.c.cfg.Skip(SourcePrefix+id)) {
			continue
		}
		seen[id] = true
		s.pending = append(s.pending, id)
	}
	s.nextCursor = next
	return nil
}

func (s *Source) history(ctx context.Context) ([]string, string, error) {
	var ids []string
	page := ""
	for {
		q := url.Values{"startHistoryId": {s.cursor}, "historyTypes": {"messageAdded"}, "labelId": {s.c.cfg.Label},
			"maxResults": {strconv.Itoa(s.c.cfg.PageSize)}}
		if page != "" {
			q.Set("pageToken", page)
		}
		var h struct {
			History []struct {
				MessagesAdded []struct {
					Message struct {
						ID       string   `json:"id"`
						LabelIDs []string `json:"labelIds"`
					} `json:"message"`
				} `json:"messagesAdded"`
			} `json:"history"`
			NextPageToken string `json:"nextPageToken"`
			HistoryID     string `json:"historyId"`
		}
		if err := s.c.do(ctx, "gmail history", "GET", "/history", q, nil, &h); err != nil {
			return nil, "", err
		}
		for _, rec := range h.History {
			for _, a := range rec.MessagesAdded {
				ids = append(ids, a.Message.ID)
			}
		}
		if h.NextPageToken == "" {
			return ids, h.HistoryID, nil
		}
		page = h.NextPageToken
	}
}

// full lists the label (unread only with mark_read), oldest first; the cursor is the
// historyId read before listing, so nothing that arrives meanwhile is missed.
func (s *Source) full(ctx context.Context) ([]string, string, error) {
	var p profile
	if err := s.c.do(ctx, "gmail profile", "GET", "/profile", nil, nil, &p); err != nil {
		return nil, "", err
	}
	labels := []string{s.c.cfg.Label}
	if s.c.cfg.AfterAction == "" || s.c.cfg.AfterAction == "mark_read" {
		labels = append(labels, "UNREAD")
	}
	var ids []string
	page := ""
	for {
		q := url.Values{"labelIds": labels, "maxResults": {strconv.Itoa(s.c.cfg.PageSize)}}
		if page != "" {
			q.Set("pageToken", page)
		}
		var l struct {
			Messages      []ref  `json:"messages"`
			NextPageToken string `json:"nextPageToken"`
		}
		if err := s.c.do(ctx, "gmail list", "GET", "/messages", q, nil, &l); err != nil {
			return nil, "", err
		}
		for _, m := range l.Messages {
			ids = append(ids, m.ID)
		}
		if l.NextPageToken == "" {
			break
		}
		page = l.NextPageToken
	}
	for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 { // Gmail lists newest first
		ids[i], ids[j] = ids[j], ids[i]
	}
	return ids, p.HistoryID, nil
}

// fetch downloads one message; gone is true when it was deleted meanwhile.
func (s *Source) fetch(ctx context.Context, id string) (connector.Incoming, bool, error) {
	var m struct {
		Raw          string `json:"raw"`
		InternalDate string `json:"internalDate"`
		SizeEstimate int64  `json:"sizeEstimate"`
	}
	err := s.c.do(ctx, "gmail get message", "GET", "/messages/"+url.PathEscape(id), url.Values{"format": {"raw"}}, nil, &m)
	if isNotFound(err) {
		return connector.Incoming{}, true, nil
	}
	if err != nil {
		return connector.Incoming{}, false, err
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(m.Raw, "="))
	if err != nil {
		return connector.Incoming{}, false, &connector.Error{Kind: connector.KindServer, Op: "gmail get message", Err: err,
			Advice: "the Gmail API sent a message postroom cannot decode"}
	}
	in := connector.Incoming{SourceID: SourcePrefix + id, Raw: raw, Size: int64(len(raw))}
	if ms, err := strconv.ParseInt(m.InternalDate, 10, 64); err == nil {
		in.ReceivedAt = time.UnixMilli(ms)
	}
	if max := s.c.cfg.MaxSizeBytes; max > 0 && in.Size > max {
		end := bytes.Index(raw, []byte("\r\n\r\n"))
		if end < 0 {
			end = min(len(raw), 64<<10)
		} else {
			end += 4
		}
		in.Raw, in.OverSize = raw[:end], true
	}
	return in, false, nil
}

// Ack applies the after-processing action to stored messages.
func (s *Source) Ack(ctx context.Context, sourceIDs []string) error {
	var add, remove []string
	switch s.c.cfg.AfterAction {
	case "keep":
		return nil
	case "move":
		add, remove = []string{s.c.cfg.MoveLabel}, []string{s.c.cfg.Label, "UNREAD"}
	default:
		remove = []string{"UNREAD"}
	}
	for _, sid := range sourceIDs {
		id, ok := strings.CutPrefix(sid, SourcePrefix)
		if !ok {
			continue
		}
		body := map[string][]string{"addLabelIds": add, "removeLabelIds": remove}
		err := s.c.do(ctx, "gmail modify labels", "POST", "/messages/"+url.PathEscape(id)+"/modify", nil, body, nil)
		if err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// Wait returns when the mailbox changed (its historyId moved past the cursor), after max,
// or when ctx is done. It asks users.getProfile every Config.WatchInterval: the Gmail
// API's own push goes through Google Cloud Pub/Sub, which postroom does not use.
func (s *Source) Wait(ctx context.Context, max time.Duration) error {
	if len(s.pending) > 0 {
		return nil
	}
	deadline := time.Now().Add(max)
	for {
		var p profile
		if err := s.c.do(ctx, "gmail profile", "GET", "/profile", nil, nil, &p); err != nil {
			return err
		}
		if p.HistoryID != s.cursor {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(s.c.cfg.WatchInterval, left)):
		}
	}
}

// SetAside leaves over-size messages where they are: the history does not bring them back.
func (s *Source) SetAside(ctx context.Context, sourceIDs []string) error { return nil }

// Close releases nothing: the API has no connection to close.
func (s *Source) Close() error { return nil }
