package routing

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// HourPoint is one hour of the supervisor's hourly figures.
type HourPoint struct {
	Hour        time.Time `json:"hour"` // the start of the hour, UTC
	Arrivals    int       `json:"arrivals"`
	Responded   int       `json:"responded"`    // first responses in the hour
	ResponseMet int       `json:"response_met"` // of those, within the SLA
	// SLAAttainment is ResponseMet / Responded in percent, nil when nothing was answered.
	SLAAttainment *float64 `json:"sla_attainment_pct"`
}

// HourlyHours is how many hours Hourly covers: the last 24, the current one included.
const HourlyHours = 24

// HourlyStore is what Hourly needs of the store.
type HourlyStore interface {
	HourlyStats(ctx context.Context, since time.Time) ([]store.HourStats, error)
}

// Hourly returns arrivals and first-response SLA attainment for each of the last 24
// hours up to now, oldest first, with every hour present (zero when nothing happened).
func Hourly(ctx context.Context, st HourlyStore, now time.Time) ([]HourPoint, error) {
	since := now.UTC().Truncate(time.Hour).Add(-(HourlyHours - 1) * time.Hour)
	stats, err := st.HourlyStats(ctx, since)
	if err != nil {
		return nil, err
	}
	out := make([]HourPoint, HourlyHours)
	for i := range out {
		out[i].Hour = since.Add(time.Duration(i) * time.Hour)
	}
	for _, s := range stats {
		i := int(s.Hour.UTC().Sub(since) / time.Hour)
		if i < 0 || i >= HourlyHours {
			continue
		}
		out[i].Arrivals += s.Arrivals
		out[i].Responded += s.Responded
		out[i].ResponseMet += s.ResponseMet
	}
	for i := range out {
		if out[i].Responded > 0 {
			pct := float64(out[i].ResponseMet) * 100 / float64(out[i].Responded)
			out[i].SLAAttainment = &pct
		}
	}
	return out, nil
}

// MaxHistoryDays bounds the range of a history export.
const MaxHistoryDays = 92

// HistoryRange parses the days of a history export, YYYY-MM-DD, both included (UTC
// days), and returns the instants [from, to). An empty to is today, an empty from the
// week up to to. Problems are returned by field ("from", "to") with what to enter.
func HistoryRange(fromText, toText string, now time.Time) (from, to time.Time, problems map[string]string) {
	problems = map[string]string{}
	today := now.UTC().Truncate(24 * time.Hour)
	day := func(field, text string, def time.Time) time.Time {
		text = strings.TrimSpace(text)
		if text == "" {
			return def
		}
		t, err := time.Parse(time.DateOnly, text)
		if err != nil {
			problems[field] = fmt.Sprintf("enter a date as YYYY-MM-DD, for example %s", today.Format(time.DateOnly))
			return time.Time{}
		}
		return t
	}
	last := day("to", toText, today)
	first := day("from", fromText, last.AddDate(0, 0, -6))
	if len(problems) > 0 {
		return time.Time{}, time.Time{}, problems
	}
	switch days := int(last.Sub(first)/(24*time.Hour)) + 1; {
	case last.Before(first):
		problems["to"] = fmt.Sprintf("enter a date on or after from (%s)", first.Format(time.DateOnly))
	case days > MaxHistoryDays:
		problems["to"] = fmt.Sprintf("choose at most %d days: from %s the latest to is %s", MaxHistoryDays,
			first.Format(time.DateOnly), first.AddDate(0, 0, MaxHistoryDays-1).Format(time.DateOnly))
	}
	if len(problems) > 0 {
		return time.Time{}, time.Time{}, problems
	}
	return first, last.Add(24 * time.Hour), nil
}

// HistoryColumns are the columns of the history export, in order.
var HistoryColumns = []string{"work_item_id", "at", "actor", "kind", "from", "to", "agent", "queue", "reason", "subject",
	"received_at", "first_response_at", "first_response_s", "handle_time_s", "sla_met"}

// WriteHistoryCSV writes the history rows as CSV (header first) to w as it goes. agents
// names the agents by user id (an unknown one is written as its id). Cells that a
// spreadsheet would take for a formula are prefixed with a quote.
func WriteHistoryCSV(w io.Writer, rows []store.HistoryRow, agents map[int64]string, now time.Time) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(HistoryColumns); err != nil {
		return err
	}
	rec := make([]string, len(HistoryColumns))
	for i, r := range rows {
		agent := ""
		if r.AgentID != 0 {
			agent = agents[r.AgentID]
			if agent == "" {
				agent = "#" + strconv.FormatInt(r.AgentID, 10)
			}
		}
		firstS, handleS, met := "", "", ""
		if !r.FirstResponseAt.IsZero() && !r.ReceivedAt.IsZero() {
			firstS = strconv.FormatInt(max(0, int64(r.FirstResponseAt.Sub(r.ReceivedAt)/time.Second)), 10)
		}
		if !r.DoneAt.IsZero() && !r.AssignedAt.IsZero() && !r.DoneAt.Before(r.AssignedAt) {
			handleS = strconv.FormatInt(int64(r.DoneAt.Sub(r.AssignedAt)/time.Second), 10)
		}
		switch {
		case r.FirstDueAt.IsZero():
		case !r.FirstResponseAt.IsZero() && !r.FirstResponseAt.After(r.FirstDueAt):
			met = "yes"
		case !r.FirstResponseAt.IsZero() || now.After(r.FirstDueAt):
			met = "no"
		}
		rec = append(rec[:0], strconv.FormatInt(r.WorkItemID, 10), csvTime(r.At), r.Actor, r.Kind, r.From, r.To, agent,
			r.QueueName, r.Reason, r.Subject, csvTime(r.ReceivedAt), csvTime(r.FirstResponseAt), firstS, handleS, met)
		for j, v := range rec {
			rec[j] = csvSafe(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
		if i%500 == 499 {
			cw.Flush() // stream: a large export starts arriving at once
			if err := cw.Error(); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// csvSafe keeps a spreadsheet from running a cell as a formula (CSV injection): a cell
// that starts with = + - @ (or a tab or carriage return) gets a leading quote.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
