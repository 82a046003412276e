package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// myRefreshSeconds is how often the "My work" page reloads itself (a meta refresh: the
// pages run no script), so that offers and their time left stay current.
const myRefreshSeconds = 15

// agentStatuses are the statuses an agent may choose, in the order the switch shows them.
var agentStatuses = []string{store.AgentAvailable, store.AgentAway, store.AgentOffline}

// myNotes are the fixed messages a redirect to /my may ask for (?note=...): the query
// carries a key, never text, so that a link cannot put words on the page.
var myNotes = map[string]string{
	"nothing":  "Nothing fits your skills and capacity right now. Try again in a moment, or wait for an offer.",
	"capacity": "You have as many items as your capacity allows: finish one first.",
	"status":   "Status changed.",
	"declined": "Offer declined: it goes back to its queue.",
}

// agentRoutes registers the agent's workspace: "My work" and the work item actions.
func (h *handler) agentRoutes(mux *pageMux) {
	mux.page("GET /my", store.RoleAgent, h.myWork)
	mux.page("POST /my/status", store.RoleAgent, h.myStatus)
	mux.page("POST /my/next", store.RoleAgent, h.myNext)
	mux.page("POST /workitems/{id}/action", store.RoleAgent, h.workItemAction)
}

// landing sends each role to its start page: agents to their work, supervisors and
// admins to the work item list.
func (h *handler) landing(w http.ResponseWriter, r *http.Request, v viewer) {
	target := "/workitems"
	if !auth.Allowed(v.User.Role, store.RoleSupervisor) {
		target = "/my"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

type myData struct {
	Running  bool
	Off      string
	Status   string
	Statuses []string
	Capacity int
	Note     string
	Offers   []itemRow
	Work     []itemRow
	Refresh  int
	// Mentions are the newest notes that mention the agent.
	Mentions []store.Mention
}

func (h *handler) myWork(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	now := h.now()
	d := myData{Running: h.routingRunning(), Off: routingOff, Statuses: agentStatuses, Note: myNotes[r.URL.Query().Get("note")],
		Refresh: myRefreshSeconds}
	a, err := h.st.Agent(ctx, v.User.ID)
	if err != nil {
		h.serverError(w, r, "read your agent profile", err)
		return
	}
	d.Status, d.Capacity = a.Status, a.Capacity
	cfg := h.routingConfig()
	offers, err := h.st.ListWorkItems(ctx, store.WorkItemFilter{State: store.StateOffered, OfferedTo: v.User.ID, Sort: "oldest", Limit: 500})
	if err != nil {
		h.serverError(w, r, "list your offers", err)
		return
	}
	for _, wi := range offers {
		d.Offers = append(d.Offers, itemRowOf(cfg, wi, now))
	}
	work, err := h.st.ListWorkItems(ctx, store.WorkItemFilter{
		States: []string{store.StateAssigned, store.StatePending, store.StateOnHold}, AssignedTo: v.User.ID, Sort: "oldest", Limit: 500})
	if err != nil {
		h.serverError(w, r, "list your work items", err)
		return
	}
	for _, wi := range work {
		d.Work = append(d.Work, itemRowOf(cfg, wi, now))
	}
	// Most urgent first: overdue, then by due instant; items without an SLA last.
	slices.SortStableFunc(d.Work, func(x, y itemRow) int {
		switch {
		case x.SLA.Due.IsZero() != y.SLA.Due.IsZero():
			if x.SLA.Due.IsZero() {
				return 1
			}
			return -1
		default:
			return x.SLA.Due.Compare(y.SLA.Due)
		}
	})
	if d.Mentions, err = h.st.Mentions(ctx, v.User.ID, 10); err != nil {
		h.serverError(w, r, "list the notes that mention you", err)
		return
	}
	h.render(w, r, http.StatusOK, "my", h.data(v, "My work", "my", d))
}

// routingUnavailable writes the page that says routing is not running (503: the server
// cannot do it now; nothing is wrong with the request).
func (h *handler) routingUnavailable(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, http.StatusServiceUnavailable, "Routing is not running", routingOff)
}

func (h *handler) myStatus(w http.ResponseWriter, r *http.Request, v viewer) {
	if !h.routingRunning() {
		h.routingUnavailable(w, r)
		return
	}
	status := r.PostForm.Get("status")
	if !slices.Contains(agentStatuses, status) {
		h.errorPage(w, r, http.StatusBadRequest, "Unknown status", "Choose available, away or offline. Go back and try again.")
		return
	}
	if err := h.engine.SetStatus(r.Context(), v.User.ID, status); err != nil {
		h.serverError(w, r, "change your status", err)
		return
	}
	h.logger.InfoContext(r.Context(), "agent status set", slog.String("user", v.User.Username), slog.String("status", status))
	http.Redirect(w, r, "/my?note=status", http.StatusSeeOther)
}

func (h *handler) myNext(w http.ResponseWriter, r *http.Request, v viewer) {
	if !h.routingRunning() {
		h.routingUnavailable(w, r)
		return
	}
	h.touch(r, v)
	wi, ok, err := h.engine.Pull(r.Context(), v.User)
	switch {
	case errors.Is(err, routing.ErrAtCapacity):
		http.Redirect(w, r, "/my?note=capacity", http.StatusSeeOther)
	case err != nil:
		h.serverError(w, r, "get your next work item", err)
	case !ok:
		http.Redirect(w, r, "/my?note=nothing", http.StatusSeeOther)
	default:
		h.logger.InfoContext(r.Context(), "agent pulled a work item", slog.String("user", v.User.Username), slog.Int64("work_item_id", wi.ID))
		http.Redirect(w, r, fmt.Sprintf("/workitems/%d?done=next", wi.ID), http.StatusSeeOther)
	}
}

// touch records that the agent did something (the engine's idle timeout counts from it).
func (h *handler) touch(r *http.Request, v viewer) {
	if err := h.st.TouchAgent(r.Context(), v.User.ID, h.now()); err != nil {
		h.logger.WarnContext(r.Context(), "record agent activity", slog.String("user", v.User.Username), slog.Any("error", err))
	}
}
