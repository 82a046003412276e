package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// viewRoutes are the saved views of the work item list: saving the list's filter under a
// name and deleting a view (listing them is part of the list page).
func (h *handler) viewRoutes(mux *pageMux) {
	mux.page("POST /workitems/views", store.RoleAgent, h.saveView)
	mux.page("POST /workitems/views/{id}/delete", store.RoleAgent, h.deleteView)
}

// saveView saves the filter of the list the form was on (field "filter") as a view called
// "name", shared with everyone when "shared" is checked, and shows that list again. A
// refused form is shown again on the list, with what to correct.
func (h *handler) saveView(w http.ResponseWriter, r *http.Request, v viewer) {
	form := r.PostForm
	filter := form.Get("filter")
	shared := form.Get("shared") != ""
	sv, err := workitem.NewViews(h.st).Save(r.Context(), v.User, form.Get("name"), filter, shared)
	var invalid *workitem.ValidationError
	switch {
	case errors.As(err, &invalid):
		query, perr := url.ParseQuery(filter)
		if perr != nil {
			query = url.Values{}
		}
		h.renderWorkItems(w, r, v, query, workItemsData{ViewName: form.Get("name"), ViewShared: shared, ViewErrors: invalid.Fields})
		return
	case err != nil:
		h.serverError(w, r, "save the view", err)
		return
	}
	h.logger.InfoContext(r.Context(), "view saved", slog.Int64("view_id", sv.ID), slog.String("user", v.User.Username), slog.Bool("shared", sv.Shared))
	http.Redirect(w, r, workItemsURL(sv.Filter), http.StatusSeeOther)
}

// deleteView deletes a saved view (the user's own, or any for an admin) and shows the
// list the form was on (field "filter") again.
func (h *handler) deleteView(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := h.pathID(w, r, "saved view")
	if !ok {
		return
	}
	err := workitem.NewViews(h.st).Delete(r.Context(), v.User, id)
	switch {
	case errors.Is(err, workitem.ErrNotAllowed):
		h.errorPage(w, r, http.StatusForbidden, "Not allowed", sentence(err.Error()))
		return
	case err != nil:
		h.storeError(w, r, "saved view", err)
		return
	}
	back := url.Values{}
	if q, err := url.ParseQuery(r.PostForm.Get("filter")); err == nil {
		back = q
	}
	http.Redirect(w, r, workItemsURL(workitem.FilterQuery(back)), http.StatusSeeOther)
}
