package web

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestPagesShowTheUsersTimeZone: the item page shows the message's Date (09:15 +01:00 on
// 2 Mar 2026) in UTC, labelled, until the user picks a zone; then in that zone, named. An
// unknown zone is refused and changes nothing.
func TestPagesShowTheUsersTimeZone(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	item := fmt.Sprintf("/workitems/%d", f.items["plain.eml"].WorkItemID)

	if p := c.get(item); !strings.Contains(p.body, "Mon 2 Mar 2026 08:15 UTC") {
		t.Fatalf("without a zone the page should show UTC, labelled:\n%s", p.body)
	}
	csrf := c.get("/account").csrf(t)
	if p := c.post("/account/time-zone", url.Values{"csrf": {csrf}, "time_zone": {"Europe/Atlantis"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="tz-error"`) {
		t.Fatalf("unknown zone: %d, want 400 with the field error", p.status)
	}
	if got := f.user(t, "admin").TimeZone; got != "" {
		t.Fatalf("unknown zone was saved: %q", got)
	}
	if p := c.get(item); !strings.Contains(p.body, "Mon 2 Mar 2026 08:15 UTC") {
		t.Fatal("a refused zone changed the times shown")
	}

	if p := c.post("/account/time-zone", url.Values{"csrf": {csrf}, "time_zone": {"Europe/Berlin"}}); p.status != http.StatusSeeOther {
		t.Fatalf("save zone: %d\n%s", p.status, p.body)
	}
	p := c.get(item)
	if !strings.Contains(p.body, "Mon 2 Mar 2026 09:15 CET") || strings.Contains(p.body, "08:15 UTC") {
		t.Fatalf("with Europe/Berlin the page should show 09:15 CET:\n%s", p.body)
	}
	// The list's received time (now) is named in Berlin's zone too.
	list := c.get("/workitems")
	if !regexp.MustCompile(`title="[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d CES?T"`).MatchString(list.body) {
		t.Errorf("list times are not in Berlin time:\n%s", list.body)
	}
	// Another user without a zone still sees UTC.
	if p := f.signIn(t, "sam").get(item); !strings.Contains(p.body, "Mon 2 Mar 2026 08:15 UTC") {
		t.Error("sam (no zone) should see UTC")
	}
}
