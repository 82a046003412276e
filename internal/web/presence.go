package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// The agent's workspace: who else has a work item open or is writing a reply to it (the
// collision guard's presence), the live list and item page, and what the reply form
// carries for the guard (workitem.CheckSeen). Presence is kept in this process's memory:
// with several postroom processes behind one address, an agent sees only the colleagues
// served by the same process until changes are shared between processes (PostgreSQL
// LISTEN/NOTIFY). /static/workspace.js keeps the pages live from /workitems/events and
// adds the keyboard shortcuts; without it the pages work as before, and the presence
// shown is the one at page load.

const (
	// presenceTTL is how long a viewer or typist stays listed without a heartbeat.
	presenceTTL = 30 * time.Second
	// presenceBeat is how often an open item page's stream renews its viewer's presence.
	presenceBeat = 10 * time.Second
)

// workspaceInterval is how often a live list or item page is refreshed when nothing
// reports a change (changes made by other processes, presence that expired); a variable
// for the tests.
var workspaceInterval = 15 * time.Second

// presenceEntry is one signed-in session's presence on one work item.
type presenceEntry struct {
	userID int64
	name   string
	seen   time.Time // last heartbeat of the open page
	typed  time.Time // last keystroke in the reply box (zero: not typing)
}

// presenceView is a colleague on a work item, as the page and its stream show it.
type presenceView struct {
	Name   string `json:"name"`
	Typing bool   `json:"typing"`
}

// presence is who has which work item open, per session, in memory.
type presence struct {
	mu      sync.Mutex
	now     func() time.Time
	items   map[int64]map[string]*presenceEntry // work item → session token hash → entry
	changed chan struct{}                       // closed at the next change
}

func newPresence(now func() time.Time) *presence {
	return &presence{now: now, items: map[int64]map[string]*presenceEntry{}}
}

// notifyLocked wakes the waiters of changes; p.mu is held.
func (p *presence) notifyLocked() {
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

// wait returns a channel closed at the next change of anyone's presence.
func (p *presence) wait() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return p.changed
}

// see records that session key of user has item open; typing marks a keystroke in the
// reply box.
func (p *presence) see(item int64, key string, u store.User, typing bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	sessions := p.items[item]
	if sessions == nil {
		sessions = map[string]*presenceEntry{}
		p.items[item] = sessions
	}
	e := sessions[key]
	fresh := e == nil || now.Sub(e.seen) > presenceTTL
	if e == nil {
		e = &presenceEntry{userID: u.ID, name: cmp.Or(u.DisplayName, u.Username)}
		sessions[key] = e
	}
	wasTyping := !e.typed.IsZero() && now.Sub(e.typed) <= presenceTTL
	e.seen = now
	if typing {
		e.typed = now
	}
	if fresh || (typing && !wasTyping) {
		p.notifyLocked()
	}
}

// stopTyping records that session key sent (or dropped) its reply to item.
func (p *presence) stopTyping(item int64, key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.items[item][key]; e != nil && !e.typed.IsZero() {
		e.typed = time.Time{}
		p.notifyLocked()
	}
}

// leave records that session key closed item.
func (p *presence) leave(item int64, key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.items[item][key]; ok {
		delete(p.items[item], key)
		if len(p.items[item]) == 0 {
			delete(p.items, item)
		}
		p.notifyLocked()
	}
}

// others returns who else than user has item open, writers first, then by name; entries
// past presenceTTL are dropped.
func (p *presence) others(item int64, userID int64) []presenceView {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	byUser := map[int64]*presenceView{}
	for key, e := range p.items[item] {
		if now.Sub(e.seen) > presenceTTL {
			delete(p.items[item], key)
			continue
		}
		if e.userID == userID {
			continue
		}
		typing := !e.typed.IsZero() && now.Sub(e.typed) <= presenceTTL
		if v := byUser[e.userID]; v != nil {
			v.Typing = v.Typing || typing
			continue
		}
		byUser[e.userID] = &presenceView{Name: e.name, Typing: typing}
	}
	if len(p.items[item]) == 0 {
		delete(p.items, item)
	}
	out := make([]presenceView, 0, len(byUser))
	for _, v := range byUser {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b presenceView) int {
		if a.Typing != b.Typing {
			if a.Typing {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

// collisionData is what the item page shows and carries for the collision guard.
type collisionData struct {
	// Presence are the colleagues who have the item open.
	Presence []presenceView
	// Seen is the newest message of the conversation on the page: the reply form sends it
	// back as seen_message_id.
	Seen int64
	// Changed is set when a reply was refused because the conversation changed: the
	// explanation, the messages since and the state the refused reply asked for (the
	// "Send anyway" button sends it again with it).
	Changed     string
	New         []store.Message
	ConfirmThen string
}

// collisionView fills the collision guard's part of the item page shown to v and records
// that v has the item open.
func (h *handler) collisionView(v viewer, wi store.WorkItem, msgs []store.Message, d collisionData) collisionData {
	h.presence.see(wi.ID, v.Session.TokenHash, v.User, false)
	d.Presence = h.presence.others(wi.ID, v.User.ID)
	d.Seen = workitem.LatestMessageID(msgs)
	return d
}

// isNew says whether message id is one of those a refused reply did not see.
func (d collisionData) isNew(id int64) bool {
	return slices.ContainsFunc(d.New, func(m store.Message) bool { return m.ID == id })
}

// collisionForm reads the collision guard's fields of a reply form: seen_message_id, and
// confirm (the "Send anyway" button, whose value is the state the reply asks for).
func collisionForm(r *http.Request) (seen int64, confirm bool, then string) {
	seen, _ = strconv.ParseInt(r.PostForm.Get("seen_message_id"), 10, 64)
	then = r.PostForm.Get("then")
	if c := r.PostForm.Get("confirm"); c != "" {
		return seen, true, c
	}
	return seen, false, then
}

// replyRefused renders the item page for a reply refused by the collision guard (handled
// is true), or returns false for another error.
func (h *handler) replyRefused(w http.ResponseWriter, r *http.Request, v viewer, wi store.WorkItem, err error, d workItemData, then string) bool {
	var changed *workitem.ConversationChangedError
	switch {
	case errors.As(err, &changed):
		d.Collision = collisionData{Changed: "Your reply was not sent: " + changed.Error() + ".", New: changed.New, ConfirmThen: cmp.Or(then, store.StateAssigned)}
		h.renderWorkItem(w, r, v, http.StatusConflict, wi, d)
		return true
	case errors.Is(err, workitem.ErrUnknownSeenMessage):
		d.FormError = "The reply was not sent: the page was made for another conversation. Your reply is below: send it again."
		h.renderWorkItem(w, r, v, http.StatusBadRequest, wi, d)
		return true
	}
	return false
}

func (h *handler) workspaceRoutes(mux *pageMux) {
	mux.page("GET /workitems/events", store.RoleAgent, h.workspaceEvents)
	mux.page("POST /workitems/{id}/presence", store.RoleAgent, h.presenceTyping)
}

// presenceTyping records a keystroke in the item's reply box (workspace.js sends one
// every few seconds while the agent writes).
func (h *handler) presenceTyping(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := h.pathID(w, r, "work item")
	if !ok {
		return
	}
	if r.PostForm.Get("typing") == "0" {
		h.presence.stopTyping(id, v.Session.TokenHash)
	} else {
		h.presence.see(id, v.Session.TokenHash, v.User, true)
	}
	w.WriteHeader(http.StatusNoContent)
}

// itemEvent is what the item page's stream sends.
type itemEvent struct {
	LatestMessageID int64          `json:"latest_message_id"`
	State           string         `json:"state"`
	Presence        []presenceView `json:"presence"`
}

// workspaceEvents streams server-sent events to the work item list and, with ?item=, to
// an item page: "list" when work items may have changed (the page reloads its rows) and
// "item" with the item's newest message, state and presence whenever these change. The
// open item counts as viewed while its stream is open.
func (h *handler) workspaceEvents(w http.ResponseWriter, r *http.Request, v viewer) {
	var item int64
	if s := r.URL.Query().Get("item"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			http.Error(w, "item must be a work item id", http.StatusBadRequest)
			return
		}
		item = id
	}
	if !h.takeStream(w, "too many live pages are open: this one retries in a moment") {
		return
	}
	defer h.board.streams.Add(-1)
	ctx := r.Context()
	write := startEventStream(w)
	key := v.Session.TokenHash
	if item != 0 {
		h.presence.see(item, key, v.User, false)
		defer h.presence.leave(item, key)
	}
	var last []byte
	sendItem := func() bool {
		if item == 0 {
			return true
		}
		ev, err := h.itemEvent(ctx, item, v.User.ID)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) {
				h.logger.WarnContext(ctx, "live item page", slog.Int64("work_item_id", item), slog.Any("error", err))
			}
			return write(": the item could not be loaded; retrying\n\n")
		}
		data, _ := json.Marshal(ev)
		if string(data) == string(last) {
			return true
		}
		last = data
		return write("event: item\ndata: " + string(data) + "\n\n")
	}
	if !write("retry: 3000\n\n") {
		return
	}
	engineCh, presenceCh := h.engineChanged(), h.presence.wait()
	if !sendItem() {
		return
	}
	tick := time.NewTicker(workspaceInterval)
	defer tick.Stop()
	beat := time.NewTicker(presenceBeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			if _, _, err := h.auth.Authenticate(r); err != nil {
				return // signed out meanwhile
			}
			if item != 0 {
				h.presence.see(item, key, v.User, false)
			}
			if !write(": heartbeat\n\n") || !sendItem() {
				return
			}
		case <-presenceCh:
			presenceCh = h.presence.wait()
			if !sendItem() {
				return
			}
		case <-engineCh:
			// A burst of changes becomes one refresh.
			t := time.NewTimer(boardMinGap)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			engineCh = h.engineChanged()
			if !write("event: list\ndata: {}\n\n") || !sendItem() {
				return
			}
		case <-tick.C:
			if !write("event: list\ndata: {}\n\n") || !sendItem() {
				return
			}
		}
	}
}

// itemEvent loads what the item page's stream sends.
func (h *handler) itemEvent(ctx context.Context, item, userID int64) (itemEvent, error) {
	wi, err := h.st.WorkItem(ctx, item)
	if err != nil {
		return itemEvent{}, err
	}
	// Sent on every routing change to every open item: one indexed MAX, not the messages.
	latest, err := h.st.LatestMessageID(ctx, wi.ConversationID)
	if err != nil {
		return itemEvent{}, err
	}
	return itemEvent{LatestMessageID: latest, State: wi.State, Presence: h.presence.others(item, userID)}, nil
}

// withWorkspaceScript adds the workspace script to a list or item page.
func withWorkspaceScript(pd pageData) pageData {
	pd.Scripts = append(pd.Scripts, "/static/workspace.js")
	return pd
}
