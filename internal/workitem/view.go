package workitem

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// maxViewName bounds a saved view's name, in characters.
const maxViewName = 80

// ViewStore is what Views needs of the store.
type ViewStore interface {
	CreateSavedView(ctx context.Context, v store.SavedView) (store.SavedView, error)
	ListSavedViews(ctx context.Context, userID int64) ([]store.SavedView, error)
	SavedView(ctx context.Context, id int64) (store.SavedView, error)
	DeleteSavedView(ctx context.Context, id int64) error
}

// Views applies the rules of saved views, for the pages and the API alike: a view is a
// named list filter (FilterQuery) that belongs to the user who saved it; a supervisor or
// an administrator may share one with everyone (their teams' common lists, "unassigned
// in Billing, oldest first"). A user sees their own views and the shared ones; another
// user's private view does not exist for them. A view is deleted by its owner, or by an
// administrator.
type Views struct {
	st ViewStore
}

// NewViews returns the saved views' rules over st.
func NewViews(st ViewStore) *Views { return &Views{st: st} }

// ValidationError is a refusal for invalid input: what to correct in each field.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e.Fields[k])
	}
	return "invalid " + strings.Join(parts, "; ")
}

// Save saves filter (a list's query string; the page and unknown parameters are dropped)
// as user's view called name, shared with everyone when shared is set.
func (v *Views) Save(ctx context.Context, user store.User, name, filter string, shared bool) (store.SavedView, error) {
	fields := map[string]string{}
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		fields["name"] = "give the view a name"
	case n > maxViewName:
		fields["name"] = fmt.Sprintf("use a name of at most %d characters", maxViewName)
	}
	values, err := url.ParseQuery(strings.TrimPrefix(strings.TrimSpace(filter), "?"))
	if err != nil {
		fields["filter"] = "write the filter as a list's query string, e.g. assignee=none&queue=2&sort=oldest"
	} else if _, bad := ParseFilterFor(values, user.ID); len(bad) > 0 {
		var parts []string
		for _, k := range filterKeys {
			if msg, ok := bad[k]; ok {
				parts = append(parts, k+": "+msg)
			}
		}
		fields["filter"] = strings.Join(parts, "; ")
	}
	if shared && !auth.Allowed(user.Role, store.RoleSupervisor) {
		fields["shared"] = "only supervisors and administrators can share a view with everyone; save it for yourself"
	}
	if len(fields) > 0 {
		return store.SavedView{}, &ValidationError{Fields: fields}
	}
	sv, err := v.st.CreateSavedView(ctx, store.SavedView{UserID: user.ID, Name: name, Filter: FilterQuery(values), Shared: shared})
	if errors.Is(err, store.ErrConflict) {
		return store.SavedView{}, &ValidationError{Fields: map[string]string{"name": "you have a view with this name already: choose another name or delete that view"}}
	}
	return sv, err
}

// List lists the views user may use: their own and the shared ones, by name.
func (v *Views) List(ctx context.Context, user store.User) ([]store.SavedView, error) {
	return v.st.ListSavedViews(ctx, user.ID)
}

// Delete deletes view id for user: their own, or any view for an administrator. Another
// user's private view is store.ErrNotFound; another user's shared view ErrNotAllowed.
func (v *Views) Delete(ctx context.Context, user store.User, id int64) error {
	sv, err := v.st.SavedView(ctx, id)
	if err != nil {
		return err
	}
	if sv.UserID != user.ID {
		if !sv.Shared {
			return fmt.Errorf("saved view %d: %w", id, store.ErrNotFound)
		}
		if user.Role != store.RoleAdmin {
			return fmt.Errorf("%w: the view %q belongs to %s; only they or an administrator can delete it", ErrNotAllowed, sv.Name, sv.OwnerName)
		}
	}
	return v.st.DeleteSavedView(ctx, id)
}
