package web

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// maxPrioritySort bounds the items sorted by priority: priority is computed (never
// stored), so the sort reads the matching items, oldest first, up to this many.
const maxPrioritySort = 5000

type workItemsData struct {
	Query  string
	State  string
	Queue  int64
	Sort   string
	States []string
	Sorts  []string
	Queues []store.Queue
	Items  []itemRow
	Errors map[string]string
	// Paging: items From..To of Total; Prev and Next are links ("" when none).
	From, To, Total int
	Prev, Next      string
	// Truncated: the priority order covers only the maxPrioritySort oldest items.
	Truncated bool
	SortLimit int
	NoRouting bool
}

func (h *handler) workItems(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	f, fields := workitem.ParseFilter(r.URL.Query())
	d := workItemsData{
		Query: f.Query, State: r.URL.Query().Get("state"), Queue: f.QueueID, Sort: f.Sort, Errors: fields,
		States: []string{"open", store.StateQueued, store.StateOffered, store.StateAssigned, store.StatePending, store.StateOnHold, store.StateDone, store.StateCancelled},
		Sorts:  []string{"newest", "oldest", "priority"}, SortLimit: maxPrioritySort,
	}
	if d.Sort == "" {
		d.Sort = "newest"
	}
	queues, err := h.st.ListQueues(ctx)
	if err != nil {
		h.serverError(w, r, "list the queues", err)
		return
	}
	d.Queues = queues
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
		q := url.Values{}
		for k, v := range map[string]string{"q": f.Query, "state": d.State, "sort": r.URL.Query().Get("sort"), "limit": r.URL.Query().Get("limit")} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if f.QueueID != 0 {
			q.Set("queue", strconv.FormatInt(f.QueueID, 10))
		}
		if offset > 0 {
			q.Set("offset", strconv.Itoa(offset))
		}
		if len(q) == 0 {
			return "/workitems"
		}
		return "/workitems?" + q.Encode()
	}
	if f.Offset > 0 {
		d.Prev = link(max(0, f.Offset-f.Limit))
	}
	if f.Offset+f.Limit < total {
		d.Next = link(f.Offset + f.Limit)
	}
	h.render(w, r, http.StatusOK, "workitems", withWorkspaceScript(h.data(v, "Work items", "workitems", d)))
}
