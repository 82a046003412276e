package workitem_test

import (
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/workitem"
)

// TestParseFilterAssignee: the assignee parameter selects the user's own items, the
// unassigned ones or one user's, and says what to write otherwise.
func TestParseFilterAssignee(t *testing.T) {
	for _, tc := range []struct {
		assignee   string
		me         int64
		assignedTo int64
		unassigned bool
		bad        bool
	}{
		{"", 7, 0, false, false},
		{"me", 7, 7, false, false},
		{"me", 0, 0, false, true},
		{"none", 7, 0, true, false},
		{"12", 7, 12, false, false},
		{"-3", 7, 0, false, true},
		{"bob", 7, 0, false, true},
	} {
		f, fields := workitem.ParseFilterFor(url.Values{"assignee": {tc.assignee}}, tc.me)
		if tc.bad {
			if fields["assignee"] == "" {
				t.Errorf("assignee=%s (me %d): no field error", tc.assignee, tc.me)
			}
			continue
		}
		if len(fields) > 0 || f.AssignedTo != tc.assignedTo || f.Unassigned != tc.unassigned {
			t.Errorf("assignee=%s (me %d) = assigned to %d, unassigned %v, errors %v; want %d, %v",
				tc.assignee, tc.me, f.AssignedTo, f.Unassigned, fields, tc.assignedTo, tc.unassigned)
		}
	}
	// Any text is a search, however it looks; only a very long one is refused.
	for _, q := range []string{`"`, `*`, `a AND`, `)`, `-`, `:`, `NEAR(a b)`, `\`} {
		if f, fields := workitem.ParseFilter(url.Values{"q": {q}}); len(fields) > 0 || f.Query != q {
			t.Errorf("q=%s: query %q, errors %v; want the text as the search", q, f.Query, fields)
		}
	}
	if _, fields := workitem.ParseFilter(url.Values{"q": {strings.Repeat("word ", 300)}}); fields["q"] == "" {
		t.Error("a 1500-character search: no field error")
	}
}

func TestFilterQuery(t *testing.T) {
	q := url.Values{"sort": {"oldest"}, "queue": {"2"}, "assignee": {"none"}, "offset": {"100"}, "limit": {"5"},
		"q": {"refund & more"}, "state": {""}, "other": {"x"}}
	if got, want := workitem.FilterQuery(q), "assignee=none&q=refund+%26+more&queue=2&sort=oldest"; got != want {
		t.Errorf("FilterQuery = %q, want %q (filter keys only, in order, without the page)", got, want)
	}
}

// TestViews: who may save, share, see and delete saved views.
func TestViews(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	user := func(name, role string) store.User {
		u, err := st.CreateUser(ctx, store.User{Username: name, Role: role, PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	ana, ben := user("ana", store.RoleAgent), user("ben", store.RoleAgent)
	sue, adm := user("sue", store.RoleSupervisor), user("root", store.RoleAdmin)
	views := workitem.NewViews(st)

	mine, err := views.Save(ctx, ana, "  My pending  ", "?state=pending&assignee=me&offset=20", false)
	if err != nil || mine.Name != "My pending" || mine.Filter != "assignee=me&state=pending" || mine.UserID != ana.ID {
		t.Errorf("Save = %+v, %v; want ana's view with the filter without the page", mine, err)
	}
	fieldErr := func(what string, err error, field, word string) {
		t.Helper()
		var ve *workitem.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(ve.Fields[field], word) {
			t.Errorf("%s: %v, want a %s error saying %q", what, err, field, word)
		}
	}
	_, err = views.Save(ctx, ana, "My pending", "state=done", false)
	fieldErr("Save with a name in use", err, "name", "already")
	_, err = views.Save(ctx, ana, " ", "state=done", false)
	fieldErr("Save without a name", err, "name", "name")
	_, err = views.Save(ctx, ana, "Bad", "state=lost&sort=random", false)
	fieldErr("Save a bad filter", err, "filter", "state: use one of")
	_, err = views.Save(ctx, ana, "Everyone's", "assignee=none", true)
	fieldErr("an agent shares a view", err, "shared", "only supervisors")

	billing, err := views.Save(ctx, sue, "Unassigned in Billing, oldest first", "assignee=none&queue=2&sort=oldest", true)
	if err != nil || !billing.Shared {
		t.Fatalf("a supervisor shares a view: %+v, %v", billing, err)
	}
	benView, err := views.Save(ctx, ben, "Ben's", "q=refund", false)
	if err != nil {
		t.Fatal(err)
	}

	names := func(u store.User) string {
		list, err := views.List(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range list {
			out = append(out, v.Name)
		}
		return strings.Join(out, "|")
	}
	if got, want := names(ana), "My pending|Unassigned in Billing, oldest first"; got != want {
		t.Errorf("ana's views = %s, want %s (not ben's)", got, want)
	}
	if got, want := names(ben), "Ben's|Unassigned in Billing, oldest first"; got != want {
		t.Errorf("ben's views = %s, want %s (not ana's)", got, want)
	}

	if err := views.Delete(ctx, ben, mine.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ben deletes ana's private view: %v, want not found", err)
	}
	if err := views.Delete(ctx, ana, billing.ID); !errors.Is(err, workitem.ErrNotAllowed) {
		t.Errorf("ana deletes sue's shared view: %v, want not allowed", err)
	}
	if err := views.Delete(ctx, ana, mine.ID); err != nil {
		t.Errorf("ana deletes her view: %v", err)
	}
	if err := views.Delete(ctx, adm, billing.ID); err != nil {
		t.Errorf("an admin deletes a shared view: %v", err)
	}
	if got, want := names(ana), ""; got != want {
		t.Errorf("ana's views after the deletes = %s, want none", got)
	}
	if got, want := names(ben), "Ben's"; got != want || benView.ID == 0 {
		t.Errorf("ben's views after the deletes = %s, want %s", got, want)
	}
}
