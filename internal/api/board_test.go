package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/workitem"
)

func TestBoardHourly(t *testing.T) {
	f := newFixture(t)
	if resp := f.signedIn(t, "ana").get("/api/v1/board/hourly"); resp.status != http.StatusForbidden {
		t.Errorf("agent: %d %s, want 403", resp.status, resp.body)
	}
	resp := f.signedIn(t, "sam").get("/api/v1/board/hourly")
	if resp.status != http.StatusOK {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	var body struct {
		Hours []routing.HourPoint `json:"hours"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Hours) != routing.HourlyHours {
		t.Fatalf("%d hours, want %d", len(body.Hours), routing.HourlyHours)
	}
	arrivals := 0
	for i, h := range body.Hours {
		arrivals += h.Arrivals
		if i > 0 && !h.Hour.Equal(body.Hours[i-1].Hour.Add(time.Hour)) {
			t.Errorf("hour %d is %s, after %s", i, h.Hour, body.Hours[i-1].Hour)
		}
	}
	if arrivals != 3 {
		t.Errorf("%d arrivals, want the 3 fixture items", arrivals)
	}
	if !strings.Contains(string(resp.body), `"sla_attainment_pct":null`) {
		t.Errorf("an hour without responses has no null attainment: %s", resp.body)
	}
}

func TestBoardHistoryCSV(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sam, err := f.st.UserByUsername(ctx, "sam")
	if err != nil {
		t.Fatal(err)
	}
	item := f.items["plain.eml"].WorkItemID
	if _, err := workitem.NewService(f.st, nil).Do(ctx, sam, item, workitem.Request{Action: workitem.Cancel, Reason: "=HYPERLINK(\"x\")"}); err != nil {
		t.Fatal(err)
	}
	c := f.signedIn(t, "sam")
	today := time.Now().UTC().Format(time.DateOnly)
	resp := c.get("/api/v1/board/history.csv?from=" + today + "&to=" + today)
	if resp.status != http.StatusOK || !strings.HasPrefix(resp.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("%d %s %s", resp.status, resp.header.Get("Content-Type"), resp.body)
	}
	recs, err := csv.NewReader(strings.NewReader(string(resp.body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(recs[0], ","); got != strings.Join(routing.HistoryColumns, ",") {
		t.Errorf("header = %s", got)
	}
	found := false
	for _, r := range recs[1:] {
		if r[3] == "cancel" {
			found = true
			if r[2] != "sam" || r[4] != "queued" || r[5] != "cancelled" || r[8] != `'=HYPERLINK("x")` || r[9] != "Order 1234 has not arrived" {
				t.Errorf("cancel row = %q", r)
			}
		}
	}
	if !found {
		t.Errorf("no cancel row in %q", recs)
	}

	for q, field := range map[string]string{
		"?from=2026-02-30":               "from",
		"?from=2025-01-01&to=2025-06-01": "to",
		"?from=2025-01-02&to=2025-01-01": "to",
		"?from=yesterday&to=" + today:    "from",
		"?to=01/02/2025":                 "to",
	} {
		resp := c.get("/api/v1/board/history.csv" + q)
		if resp.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", q, resp.status, resp.body)
			continue
		}
		fields, _ := resp.json(t)["fields"].(map[string]any)
		if msg, _ := fields[field].(string); msg == "" {
			t.Errorf("%s: no problem for %s: %s", q, field, resp.body)
		}
	}
}
