package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// queueJSON is a queue with the inbound mailboxes assigned to it.
type queueJSON struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Enabled    bool      `json:"enabled"`
	MailboxIDs []int64   `json:"mailbox_ids"`
	CreatedAt  time.Time `json:"created_at"`
}

// fromAddressJSON is an address agents may reply from.
type fromAddressJSON struct {
	ID          int64     `json:"id"`
	MailboxID   int64     `json:"mailbox_id"`
	Address     string    `json:"address"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
}

func toFromAddressJSON(f store.FromAddress) fromAddressJSON {
	return fromAddressJSON{ID: f.ID, MailboxID: f.MailboxID, Address: f.Address, DisplayName: f.DisplayName, CreatedAt: f.CreatedAt}
}

// queueViews returns the queues, each with its mailboxes' ids; only is 0 for all queues.
func (s *server) queueViews(w http.ResponseWriter, r *http.Request, only int64) ([]queueJSON, bool) {
	ctx := r.Context()
	qs, err := s.st.ListQueues(ctx)
	if err != nil {
		s.writeStoreError(w, r, "queues", err)
		return nil, false
	}
	mbs, err := s.st.ListMailboxes(ctx)
	if err != nil {
		s.writeStoreError(w, r, "mailboxes", err)
		return nil, false
	}
	out := make([]queueJSON, 0, len(qs))
	for _, q := range qs {
		if only != 0 && q.ID != only {
			continue
		}
		v := queueJSON{ID: q.ID, Name: q.Name, Enabled: q.Enabled, MailboxIDs: []int64{}, CreatedAt: q.CreatedAt}
		for _, m := range mbs {
			if m.QueueID == q.ID {
				v.MailboxIDs = append(v.MailboxIDs, m.ID)
			}
		}
		out = append(out, v)
	}
	return out, true
}

func (s *server) listQueues(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	qs, ok := s.queueViews(w, r, 0)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Items []queueJSON `json:"items"`
	}{qs})
}

// writeQueue writes the view of queue id.
func (s *server) writeQueue(w http.ResponseWriter, r *http.Request, status int, id int64) {
	qs, ok := s.queueViews(w, r, id)
	if !ok {
		return
	}
	if len(qs) == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("queue %d not found: check the id", id))
		return
	}
	writeJSON(w, status, qs[0])
}

func (s *server) createQueue(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	var name string
	if errs := decodeFields(obj, map[string]member{"name": {&name, hintText}}); len(errs) > 0 {
		writeInvalid(w, "the queue has errors", errs)
		return
	}
	q, err := s.mailboxes.CreateQueue(r.Context(), user.Username, name)
	if err != nil {
		s.writeChangeError(w, r, "the queue", "create", err)
		return
	}
	s.writeQueue(w, r, http.StatusCreated, q.ID)
}

// setQueueEnabled enables or disables a queue and with it every mailbox assigned to it.
func (s *server) setQueueEnabled(enabled bool) idHandler {
	return func(w http.ResponseWriter, r *http.Request, user store.User, id int64) {
		if err := s.mailboxes.SetQueueEnabled(r.Context(), user.Username, id, enabled); err != nil {
			s.writeChangeError(w, r, fmt.Sprintf("queue %d", id), enableVerb(enabled), err)
			return
		}
		s.writeQueue(w, r, http.StatusOK, id)
	}
}

func (s *server) listFromAddresses(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	id, ok := pathID(w, r, "mailbox")
	if !ok {
		return
	}
	ctx := r.Context()
	if _, err := s.st.Mailbox(ctx, id); err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("mailbox %d", id), err)
		return
	}
	fs, err := s.st.ListFromAddresses(ctx, id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("From addresses of mailbox %d", id), err)
		return
	}
	out := struct {
		Items []fromAddressJSON `json:"items"`
	}{Items: make([]fromAddressJSON, 0, len(fs))}
	for _, f := range fs {
		out.Items = append(out.Items, toFromAddressJSON(f))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) addFromAddress(w http.ResponseWriter, r *http.Request, user store.User, id int64) {
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	var address, display string
	if errs := decodeFields(obj, map[string]member{"address": {&address, hintText}, "display_name": {&display, hintText}}); len(errs) > 0 {
		writeInvalid(w, "the From address has errors", errs)
		return
	}
	f, err := s.mailboxes.AddFromAddress(r.Context(), user.Username, id, address, display)
	if err != nil {
		s.writeChangeError(w, r, fmt.Sprintf("mailbox %d", id), "add a From address to", err)
		return
	}
	writeJSON(w, http.StatusCreated, toFromAddressJSON(f))
}

func (s *server) deleteFromAddress(w http.ResponseWriter, r *http.Request, user store.User, id int64) {
	if err := s.mailboxes.DeleteFromAddress(r.Context(), user.Username, id); err != nil {
		s.writeChangeError(w, r, fmt.Sprintf("From address %d", id), "delete", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
