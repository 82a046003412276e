package web

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// maxPrioritySort bounds the items sorted by priority: priority is computed (never
// stored), so the sort reads the matching items, oldest first, up to this many.
const maxPrioritySort = 5000

type workItemsData struct {
	Query    string
	State    string
	Queue    int64
	Assignee string // the parameter as given: "", "me", "none" or a user id
	Sort     string
	States   []string
	Sorts    []string
	Queues   []store.Queue
	Users    []store.User // the choices of "Assigned to"
	Items    []itemRow
	Errors   map[string]string
	// Filter is the list's filter as a query string (workitem.FilterQuery): what "Save
	// this view" keeps. Views are the user's saved views and the shared ones.
	Filter string
	Views  []viewRow
	// CanShare shows the "share with everyone" box (supervisors and admins).
	CanShare bool
	// ViewName and ViewErrors are a refused "Save this view" form, shown again.
	ViewName   string
	ViewShared bool
	ViewErrors map[string]string
	// Paging: items From..To of Total; Prev and Next are links ("" when none).
	From, To, Total int
	Prev, Next      string
	// Truncated: the priority order covers only the maxPrioritySort oldest items.
	Truncated bool
	SortLimit int
	NoRouting bool
}

// viewRow is a saved view on the list page.
type viewRow struct {
	store.SavedView
	URL string
	// Active: the list shows this view's filter now. CanDelete: the user's own view, or
	// any for an admin.
	Active, CanDelete bool
}

func (h *handler) workItems(w http.ResponseWriter, r *http.Request, v viewer) {
	h.renderWorkItems(w, r, v, r.URL.Query(), workItemsData{})
}

// renderWorkItems renders the list of the work items that query selects; d carries a
// refused "Save this view" form (ViewName, ViewShared, ViewErrors), if any.
func (h *handler) renderWorkItems(w http.ResponseWriter, r *http.Request, v viewer, query url.Values, d workItemsData) {
	ctx := r.Context()
	f, fields := workitem.ParseFilterFor(query, v.User.ID)
	d.Query, d.State, d.Queue, d.Assignee, d.Sort, d.Errors = f.Query, query.Get("state"), f.QueueID, query.Get("assignee"), f.Sort, fields
	d.States = []string{"open", store.StateQueued, store.StateOffered, store.StateAssigned, store.StatePending, store.StateOnHold, store.StateDone, store.StateCancelled}
	d.Sorts, d.SortLimit = []string{"newest", "oldest", "priority"}, maxPrioritySort
	d.Filter, d.CanShare = workitem.FilterQuery(query), auth.Allowed(v.User.Role, store.RoleSupervisor)
	if d.Sort == "" {
		d.Sort = "newest"
	}
	status := http.StatusOK
	if len(d.ViewErrors) > 0 {
		status = http.StatusBadRequest
	}
	queues, err := h.st.ListQueues(ctx)
	if err != nil {
		h.serverError(w, r, "list the queues", err)
		return
	}
	d.Queues = queues
	users, err := h.st.ListUsers(ctx)
	if err != nil {
		h.serverError(w, r, "list the users", err)
		return
	}
	for _, u := range users {
		if !u.Disabled {
			d.Users = append(d.Users, u)
		}
	}
	views, err := workitem.NewViews(h.st).List(ctx, v.User)
	if err != nil {
		h.serverError(w, r, "list your saved views", err)
		return
	}
	for _, sv := range views {
		d.Views = append(d.Views, viewRow{SavedView: sv, URL: workItemsURL(sv.Filter), Active: sv.Filter == d.Filter,
			CanDelete: sv.UserID == v.User.ID || v.User.Role == store.RoleAdmin})
	}
	if len(fields) > 0 {
		h.render(w, r, http.StatusBadRequest, "workitems", h.data(v, "Work items", "workitems", d))
		return
	}
	total, err := h.st.CountWorkItems(ctx, f)
	if err != nil {
		h.serverError(w, r, "count the work items", err)
		return
	}
	cfg := h.routingConfig()
	now := h.now()
	var rows []itemRow
	if f.Sort == "priority" && cfg != nil {
		all := f
		all.Sort, all.Limit, all.Offset = "oldest", maxPrioritySort, 0
		items, err := h.st.ListWorkItems(ctx, all)
		if err != nil {
			h.serverError(w, r, "list the work items", err)
			return
		}
		d.Truncated = total > len(items)
		for _, wi := range items {
			rows = append(rows, itemRowOf(cfg, wi, now))
		}
		// Highest priority first; items with none (closed) last; the oldest first on ties,
		// as the engine orders its queues.
		slices.SortStableFunc(rows, func(a, b itemRow) int {
			if a.HasPriority != b.HasPriority {
				if a.HasPriority {
					return -1
				}
				return 1
			}
			return cmp.Compare(b.Priority, a.Priority)
		})
		rows = rows[min(f.Offset, len(rows)):min(f.Offset+f.Limit, len(rows))]
	} else {
		d.NoRouting = f.Sort == "priority"
		items, err := h.st.ListWorkItems(ctx, f)
		if err != nil {
			h.serverError(w, r, "list the work items", err)
			return
		}
		for _, wi := range items {
			rows = append(rows, itemRowOf(cfg, wi, now))
		}
	}
	d.Items, d.Total = rows, total
	if len(rows) > 0 {
		d.From, d.To = f.Offset+1, f.Offset+len(rows)
	}
	link := func(offset int) string {
		q, _ := url.ParseQuery(d.Filter) // FilterQuery's output always parses
		if l := query.Get("limit"); l != "" {
			q.Set("limit", l)
		}
		if offset > 0 {
			q.Set("offset", strconv.Itoa(offset))
		}
		return workItemsURL(q.Encode())
	}
	if f.Offset > 0 {
		d.Prev = link(max(0, f.Offset-f.Limit))
	}
	if f.Offset+f.Limit < total {
		d.Next = link(f.Offset + f.Limit)
	}
	h.render(w, r, status, "workitems", withWorkspaceScript(h.data(v, "Work items", "workitems", d)))
}

// workItemsURL is the list page with the query string query.
func workItemsURL(query string) string {
	if query == "" {
		return "/workitems"
	}
	return "/workitems?" + query
}
