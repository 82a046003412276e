package web

import (
	"net/http"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

type workItemsData struct {
	Query  string
	State  string
	States []string
	Items  []store.WorkItem
	Errors map[string]string
}

func (h *handler) workItems(w http.ResponseWriter, r *http.Request, v viewer) {
	f, fields := workitem.ParseFilter(r.URL.Query())
	d := workItemsData{
		Query: f.Query, State: f.State, Errors: fields,
		States: []string{"open", store.StateQueued, store.StateOffered, store.StateAssigned, store.StatePending, store.StateOnHold, store.StateDone, store.StateCancelled},
	}
	status := http.StatusOK
	if len(fields) > 0 {
		status = http.StatusBadRequest
	} else {
		items, err := h.st.ListWorkItems(r.Context(), f)
		if err != nil {
			h.serverError(w, r, "list the work items", err)
			return
		}
		d.Items = items
	}
	h.render(w, r, status, "workitems", h.data(v, "Work items", "workitems", d))
}
