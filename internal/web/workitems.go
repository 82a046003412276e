package web

import (
	"net/http"

	"github.com/postroom/postroom/internal/api"
	"github.com/postroom/postroom/internal/store"
)

type workItemsData struct {
	Query  string
	State  string
	States []string
	Items  []store.WorkItem
	Errors map[string]string
}

func (h *handler) workItems(w http.ResponseWriter, r *http.Request, v viewer) {
	f, fields := api.ParseWorkItemFilter(r.URL.Query())
	d := workItemsData{
		Query: f.Query, State: f.State, Errors: fields,
		States: []string{store.StateNew, store.StateAssigned, store.StateDone},
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
