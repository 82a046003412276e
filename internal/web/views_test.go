package web

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/testenv"
)

// listedSubjects are the subjects of the work items a list page shows, in order.
func listedSubjects(p webPage) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<a href="/workitems/\d+">([^<]*)</a>`).FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestSearchList: the list's search box finds words of the bodies, HTML-only mail too,
// and whatever is typed answers a page, never an error.
func TestSearchList(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "ana")
	for _, tc := range []struct {
		q    string
		want string // the subjects listed, joined by |
	}{
		{"check", "Order 1234 has not arrived"}, // a word of the text body only
		{"PLEASE", "Invoice question"},          // a word of an HTML-only body
		{"can you che", "Order 1234 has not arrived"},
		{`"check"`, "Order 1234 has not arrived"},
		{"nothing like this", ""},
		{`"`, ""}, {`*`, ""}, {`a AND`, ""}, {`)`, ""}, {`-`, ""}, {`:`, ""}, {`(`, ""}, {`NEAR(`, ""},
	} {
		p := c.get("/workitems?q=" + url.QueryEscape(tc.q))
		if p.status != http.StatusOK {
			t.Errorf("search %s: status %d, want 200:\n%s", tc.q, p.status, p.text())
			continue
		}
		if got := strings.Join(listedSubjects(p), "|"); got != tc.want {
			t.Errorf("search %s lists %q, want %q", tc.q, got, tc.want)
		}
		if tc.want == "" && !strings.Contains(p.text(), "No work items match this search") {
			t.Errorf("search %s: no empty-result message:\n%s", tc.q, p.text())
		}
		if tc.want != "" && !strings.Contains(p.text(), "1–1 of 1") {
			t.Errorf("search %s: no count 1–1 of 1:\n%s", tc.q, p.text())
		}
	}
	// The search box shows what was searched; the pages keep the search.
	p := c.get("/workitems?q=" + url.QueryEscape(`a "b" <c>`) + "&limit=1")
	if !strings.Contains(p.body, `value="a &#34;b&#34; &lt;c&gt;"`) {
		t.Errorf("search box does not show the search escaped:\n%s", p.body)
	}
	p = c.get("/workitems?q=example&limit=1&assignee=none")
	if got := listedSubjects(p); len(got) != 1 || !strings.Contains(p.text(), "1–1 of 3") {
		t.Errorf("q=example limit=1: %q, want one of 3:\n%s", got, p.text())
	}
	if !strings.Contains(p.body, `href="/workitems?assignee=none&amp;limit=1&amp;offset=1&amp;q=example"`) {
		t.Errorf("the next page link does not keep the filter:\n%s", p.body)
	}
}

// TestSavedViewsPages: a user saves the list's filter, picks it again, deletes it; a
// private view is nobody else's, a shared one is everyone's, and only supervisors and
// admins share.
func TestSavedViewsPages(t *testing.T) {
	f := newFixture(t)
	ana, sam := f.signIn(t, "ana"), f.signIn(t, "sam")
	list := ana.get("/workitems?q=invoice&sort=oldest&offset=0")
	if !strings.Contains(list.body, `name="filter" value="q=invoice&amp;sort=oldest"`) {
		t.Fatalf("the save form does not carry the list's filter:\n%s", list.body)
	}
	if strings.Contains(list.body, `name="shared"`) {
		t.Error("an agent is offered to share a view")
	}
	p := ana.post("/workitems/views", url.Values{"csrf": {list.csrf(t)}, "filter": {"q=invoice&sort=oldest"}, "name": {"My invoices"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/workitems?q=invoice&sort=oldest" {
		t.Fatalf("save a view: %d %s, want 303 to the view's list:\n%s", p.status, p.header.Get("Location"), p.text())
	}
	list = ana.get("/workitems?q=invoice&sort=oldest")
	if !strings.Contains(list.body, `<a href="/workitems?q=invoice&amp;sort=oldest" aria-current="page">My invoices</a>`) {
		t.Errorf("the saved view is not listed as the current one:\n%s", list.body)
	}
	if got := listedSubjects(list); len(got) != 1 || got[0] != "Invoice question" {
		t.Errorf("the view's list = %q", got)
	}

	// Refused: a name in use, no name, an agent sharing; the list is shown again with why.
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"filter": {"state=open"}, "name": {"My invoices"}}, "You have a view with this name already"},
		{url.Values{"filter": {"state=open"}, "name": {" "}}, "Give the view a name"},
		{url.Values{"filter": {"state=open"}, "name": {"All"}, "shared": {"1"}}, "Only supervisors and administrators can share"},
	} {
		tc.form.Set("csrf", list.csrf(t))
		p := ana.post("/workitems/views", tc.form)
		if p.status != http.StatusBadRequest || !strings.Contains(p.text(), tc.want) || !strings.Contains(p.body, `<table class="workitems">`) {
			t.Errorf("save %v: %d, want 400 with the list and %q:\n%s", tc.form, p.status, tc.want, p.text())
		}
	}

	// sam does not see ana's view; he shares one, which ana sees but cannot delete.
	samList := sam.get("/workitems?assignee=none&sort=oldest")
	if strings.Contains(samList.body, "My invoices") {
		t.Error("ana's private view is listed for sam")
	}
	if !strings.Contains(samList.body, `name="shared"`) {
		t.Error("a supervisor is not offered to share a view")
	}
	p = sam.post("/workitems/views", url.Values{"csrf": {samList.csrf(t)}, "filter": {"assignee=none&sort=oldest"},
		"name": {"Unassigned, oldest first"}, "shared": {"1"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("sam shares a view: %d:\n%s", p.status, p.text())
	}
	views, err := f.st.ListSavedViews(t.Context(), 0)
	if err != nil || len(views) != 1 || !views[0].Shared {
		t.Fatalf("shared views = %+v, %v; want sam's", views, err)
	}
	shared := views[0]
	list = ana.get("/workitems")
	if !strings.Contains(list.text(), "Unassigned, oldest first shared") {
		t.Errorf("ana's list does not show sam's shared view:\n%s", list.text())
	}
	if strings.Contains(list.body, fmt.Sprintf(`action="/workitems/views/%d/delete"`, shared.ID)) {
		t.Error("ana is offered to delete sam's shared view")
	}
	p = ana.post(fmt.Sprintf("/workitems/views/%d/delete", shared.ID), url.Values{"csrf": {list.csrf(t)}})
	if p.status != http.StatusForbidden || !strings.Contains(p.text(), "only they or an administrator can delete it") {
		t.Errorf("ana deletes sam's view: %d, want 403 saying who may:\n%s", p.status, p.text())
	}

	// ana deletes her own view and is back on the list she was looking at.
	own, err := f.st.ListSavedViews(t.Context(), mustUser(t, f, "ana").ID)
	if err != nil {
		t.Fatal(err)
	}
	var mineID int64
	for _, v := range own {
		if v.Name == "My invoices" {
			mineID = v.ID
		}
	}
	p = sam.post(fmt.Sprintf("/workitems/views/%d/delete", mineID), url.Values{"csrf": {samList.csrf(t)}})
	if p.status != http.StatusNotFound {
		t.Errorf("sam deletes ana's private view: %d, want 404", p.status)
	}
	p = ana.post(fmt.Sprintf("/workitems/views/%d/delete", mineID), url.Values{"csrf": {list.csrf(t)}, "filter": {"state=open"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/workitems?state=open" {
		t.Errorf("ana deletes her view: %d %s, want 303 to /workitems?state=open", p.status, p.header.Get("Location"))
	}
	if strings.Contains(ana.get("/workitems").body, "My invoices") {
		t.Error("the deleted view is still listed")
	}
}

// TestBrowserSearchAndViews: in a real browser, an agent searches a word of a message's
// body, saves the search as a view, and picks it again from another list.
func TestBrowserSearchAndViews(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f, "ana")

	do(t, ctx, chromedp.SendKeys(chromedp.ID("q"), "please"))
	submit(t, ctx, chromedp.Click(chromedp.CSS("form.search button")))
	rows := func() []string {
		return get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.workitems tbody tr td:first-child a")].map(a => a.innerText.trim())`))
	}
	if got := rows(); len(got) != 1 || got[0] != "Invoice question" {
		t.Fatalf("search for a word of the HTML body lists %q, want the invoice question", got)
	}

	do(t, ctx, chromedp.SendKeys(chromedp.ID("view-name"), "Please-mails"))
	submit(t, ctx, chromedp.Click(chromedp.CSS("form.save-view button")))
	if cur := get(t, ctx, chromedp.Text(chromedp.CSS(`nav.views a[aria-current="page"]`))); cur != "Please-mails" {
		t.Errorf("current view after saving = %q, want Please-mails", cur)
	}

	do(t, ctx, chromedp.Navigate(f.srv.URL+"/workitems?state=done"), chromedp.WaitVisible(chromedp.CSS("nav.views")))
	if got := rows(); len(got) != 0 {
		t.Fatalf("done items = %q, want none", got)
	}
	submit(t, ctx, chromedp.Click(`//nav[@class="views"]//a[text()="Please-mails"]`))
	if got := rows(); len(got) != 1 || got[0] != "Invoice question" {
		t.Errorf("the picked view lists %q, want the invoice question", got)
	}
	if q := get(t, ctx, chromedp.Value(chromedp.ID("q"))); q != "please" {
		t.Errorf("search box of the picked view = %q, want please", q)
	}
}
