package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// The supervisor's board: queues with their depth by state, oldest age and SLA figures,
// agents with status and load, the last 24 hours as a chart, and the history export. The
// page is complete without script; /static/board.js (the one script postroom serves, on
// this page only) keeps it live from /board/events, a server-sent event stream that
// carries the same JSON as GET /api/v1/board.

// boardInterval is how often the live board is sent when nothing changes (a variable so
// that tests can show that changes are sent at once).
var boardInterval = 2 * time.Second

// maxBoardStreams bounds the live boards open at once; more get 503 and retry (a
// variable for the tests).
var maxBoardStreams int32 = 100

const (
	// boardHeartbeat is how often a stream sends a comment, so that proxies keep it open
	// even when sending the board takes long.
	boardHeartbeat = 15 * time.Second
	// boardMinGap spaces the sends of one stream caused by changes: a burst of changes
	// (a hundred emails arriving) becomes a few sends, not a hundred.
	boardMinGap = 250 * time.Millisecond
	// boardWriteTimeout is how long one send may take before the client counts as gone.
	boardWriteTimeout = 10 * time.Second
)

// boardLive is what the live boards share: the number of open streams and the board
// last loaded, so that many open boards do not each load it.
type boardLive struct {
	streams atomic.Int32
	mu      sync.Mutex
	at      time.Time // when the load of data started
	data    []byte
}

// get returns the board JSON loaded at or after notBefore, loading it when the shared
// copy is older.
func (b *boardLive) get(notBefore time.Time, load func() ([]byte, error)) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.data != nil && !b.at.Before(notBefore) {
		return b.data, nil
	}
	start := time.Now()
	data, err := load()
	if err != nil {
		return nil, err
	}
	b.at, b.data = start, data
	return data, nil
}

func (h *handler) boardRoutes(mux *pageMux) {
	mux.page("GET /board", store.RoleSupervisor, h.boardPage)
	mux.page("GET /board/events", store.RoleSupervisor, h.boardEvents)
	mux.page("GET /board/history.csv", store.RoleSupervisor, h.boardHistory)
	mux.page("GET /board/queues/{id}", store.RoleSupervisor, h.boardQueue)
	mux.page("POST /board/items/{id}/{action}", store.RoleSupervisor, h.boardAction)
}

type boardQueueRow struct {
	routing.BoardQueue
	Queued, Offered, Assigned, Pending, OnHold int
	Oldest                                     string
	// Class marks a queue with breached ("breached") or at-risk ("at-risk") items.
	Class string
}

type boardAgentRow struct {
	routing.BoardAgent
	// Cap is the capacity the engine applies (5 when none is set).
	Cap int
}

type boardData struct {
	Queues []boardQueueRow
	Agents []boardAgentRow
	At     time.Time
	Chart  chartData
	// The history export form.
	From, To string
	Errors   map[string]string
	MaxDays  int
}

func (h *handler) boardPage(w http.ResponseWriter, r *http.Request, v viewer) {
	h.renderBoard(w, r, v, http.StatusOK, r.URL.Query().Get("from"), r.URL.Query().Get("to"), nil)
}

func (h *handler) renderBoard(w http.ResponseWriter, r *http.Request, v viewer, status int, from, to string, problems map[string]string) {
	ctx := r.Context()
	now := h.now()
	b, err := routing.LoadBoard(ctx, h.st, now)
	if err != nil {
		h.serverError(w, r, "load the board", err)
		return
	}
	hours, err := routing.Hourly(ctx, h.st, now)
	if err != nil {
		h.serverError(w, r, "load the hourly figures", err)
		return
	}
	d := boardData{At: now, Chart: hourlyChart(hours, userLocationOf(v.User)), From: from, To: to, Errors: problems, MaxDays: routing.MaxHistoryDays}
	if d.From == "" && d.To == "" {
		today := now.UTC()
		d.From, d.To = today.AddDate(0, 0, -6).Format(time.DateOnly), today.Format(time.DateOnly)
	}
	for _, q := range b.Queues {
		row := boardQueueRow{BoardQueue: q, Queued: q.ByState[store.StateQueued], Offered: q.ByState[store.StateOffered],
			Assigned: q.ByState[store.StateAssigned], Pending: q.ByState[store.StatePending], OnHold: q.ByState[store.StateOnHold],
			Oldest: waitingAge(q.OldestAgeS, q.ByState[store.StateQueued])}
		switch {
		case q.Breached > 0:
			row.Class = "breached"
		case q.AtRisk > 0:
			row.Class = "at-risk"
		}
		d.Queues = append(d.Queues, row)
	}
	for _, a := range b.Agents {
		d.Agents = append(d.Agents, boardAgentRow{BoardAgent: a, Cap: effectiveCapacity(a.Capacity)})
	}
	pd := h.data(v, "Board", "board", d)
	pd.Wide = true
	pd.Scripts = []string{"/static/board.js"}
	h.render(w, r, status, "board", pd)
}

// effectiveCapacity is the capacity the engine applies: 5 when none is set.
func effectiveCapacity(c int) int {
	if c <= 0 {
		return 5
	}
	return c
}

// waitingAge shows the oldest waiting item's age the way board.js does.
func waitingAge(s int64, queued int) string {
	if queued == 0 {
		return "–"
	}
	switch {
	case s < 60:
		return "just now"
	case s < 3600:
		return fmt.Sprintf("%d min", s/60)
	case s < 86400:
		return fmt.Sprintf("%d h", s/3600)
	default:
		return fmt.Sprintf("%d d", s/86400)
	}
}

// boardJSON is the board as GET /api/v1/board sends it.
func (h *handler) boardJSON(ctx context.Context) ([]byte, error) {
	b, err := routing.LoadBoard(ctx, h.st, h.now())
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// takeStream takes one of the maxBoardStreams live streams (the board's and the
// workspace's), or answers 503 with msg and false; the caller gives its stream back with
// h.board.streams.Add(-1).
func (h *handler) takeStream(w http.ResponseWriter, msg string) bool {
	if n := h.board.streams.Add(1); n > maxBoardStreams {
		h.board.streams.Add(-1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, msg, http.StatusServiceUnavailable)
		return false
	}
	return true
}

// startEventStream answers 200 with the headers of a server-sent event stream and
// returns write, which sends s at once (within boardWriteTimeout); false means the
// client is gone and the stream should end.
func startEventStream(w http.ResponseWriter) (write func(s string) bool) {
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	return func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(boardWriteTimeout))
		if _, err := w.Write([]byte(s)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
}

// engineChanged is the routing engine's next change signal; nil (never ready) without
// an engine.
func (h *handler) engineChanged() <-chan struct{} {
	if h.engine == nil {
		return nil
	}
	return h.engine.Changed()
}

// boardEvents streams the board as server-sent events: at once, every boardInterval, and
// as soon as the routing engine reports a change; a comment line every boardHeartbeat.
func (h *handler) boardEvents(w http.ResponseWriter, r *http.Request, _ viewer) {
	if !h.takeStream(w, "too many live boards are open: this one retries in a moment") {
		return
	}
	defer h.board.streams.Add(-1)
	ctx := r.Context()
	write := startEventStream(w)
	var lastSend time.Time
	send := func(notBefore time.Time) bool {
		data, err := h.board.get(notBefore, func() ([]byte, error) { return h.boardJSON(ctx) })
		if err != nil {
			if ctx.Err() == nil {
				h.logger.WarnContext(ctx, "live board: load the board", slog.Any("error", err))
			}
			return write(": the board could not be loaded; retrying\n\n")
		}
		lastSend = time.Now()
		return write("event: board\ndata: " + string(data) + "\n\n")
	}
	if !write("retry: 3000\n\n") {
		return
	}
	ch := h.engineChanged()
	if !send(time.Now()) {
		return
	}
	tick := time.NewTicker(boardInterval)
	defer tick.Stop()
	beat := time.NewTicker(boardHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			// A session signed out or a role lowered meanwhile ends the stream.
			if u, _, err := h.auth.Authenticate(r); err != nil || !auth.Allowed(u.Role, store.RoleSupervisor) {
				return
			}
			if !write(": heartbeat\n\n") {
				return
			}
		case <-tick.C:
			ch = h.engineChanged()
			if !send(time.Now().Add(-time.Second)) {
				return
			}
		case <-ch:
			seen := time.Now()
			if wait := boardMinGap - time.Since(lastSend); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			ch = h.engineChanged()
			if !send(seen) {
				return
			}
			tick.Reset(boardInterval)
		}
	}
}

// boardHistory exports the history of the chosen days as CSV.
func (h *handler) boardHistory(w http.ResponseWriter, r *http.Request, v viewer) {
	q := r.URL.Query()
	from, to, problems := routing.HistoryRange(q.Get("from"), q.Get("to"), h.now())
	if problems != nil {
		h.renderBoard(w, r, v, http.StatusBadRequest, q.Get("from"), q.Get("to"), problems)
		return
	}
	ctx := r.Context()
	rows, err := h.st.History(ctx, from, to)
	if err != nil {
		h.serverError(w, r, "read the history", err)
		return
	}
	names, err := userNames(ctx, h.st)
	if err != nil {
		h.serverError(w, r, "read the users", err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="postroom-history-%s-to-%s.csv"`,
		from.Format(time.DateOnly), to.Add(-time.Hour).Format(time.DateOnly)))
	if err := routing.WriteHistoryCSV(w, rows, names, h.now()); err != nil && ctx.Err() == nil {
		h.logger.WarnContext(ctx, "history export cut short", slog.Any("error", err))
	}
}

// userNames maps user ids to usernames.
func userNames(ctx context.Context, st store.Store) (map[int64]string, error) {
	users, err := st.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[int64]string, len(users))
	for _, u := range users {
		names[u.ID] = u.Username
	}
	return names, nil
}
