package privacy

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// Paging of the audit log.
const (
	DefaultAuditPage = 50
	MaxAuditPage     = 500
	// MaxAuditExport bounds the rows of one CSV export.
	MaxAuditExport = 100000
	// maxAuditText bounds each text filter.
	maxAuditText = 200
)

// AuditQuery is an audit filter as the pages and the API read it from a query string:
// q, action, actor, object, from, to (RFC 3339, or a date YYYY-MM-DD meaning its start in
// UTC; to is exclusive, a date "to" includes that whole day), limit and offset.
type AuditQuery struct {
	Filter store.AuditFilter
	// Values is what was asked, for the form.
	Values url.Values
}

// ParseAuditQuery reads an audit filter; errs maps a parameter to advice.
func ParseAuditQuery(v url.Values) (AuditQuery, map[string]string) {
	errs := map[string]string{}
	q := AuditQuery{Values: v}
	f := &q.Filter
	for _, p := range []struct {
		name string
		dst  *string
	}{{"q", &f.Query}, {"action", &f.Action}, {"actor", &f.Actor}, {"object", &f.Object}} {
		s := strings.TrimSpace(v.Get(p.name))
		if len(s) > maxAuditText {
			errs[p.name] = fmt.Sprintf("enter at most %d characters", maxAuditText)
			continue
		}
		*p.dst = s
	}
	var err error
	if f.From, err = parseWhen(v.Get("from"), false); err != nil {
		errs["from"] = "enter a date (2026-05-01) or a time (2026-05-01T10:00:00Z)"
	}
	if f.To, err = parseWhen(v.Get("to"), true); err != nil {
		errs["to"] = "enter a date (2026-05-31) or a time (2026-05-31T18:00:00Z)"
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		errs["to"] = "enter a time after from"
	}
	f.Limit = DefaultAuditPage
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxAuditPage {
			errs["limit"] = fmt.Sprintf("enter a number of events from 1 to %d", MaxAuditPage)
		} else {
			f.Limit = n
		}
	}
	if s := v.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 100_000_000 {
			errs["offset"] = "enter how many events to skip, 0 or more"
		} else {
			f.Offset = n
		}
	}
	return q, errs
}

// parseWhen reads a date or an RFC 3339 time; a date as an exclusive end is the next day.
func parseWhen(s string, end bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, err
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

// AuditCSVHeader is the header row of the CSV export.
var AuditCSVHeader = []string{"id", "at", "actor", "action", "object", "old", "new"}

// SafeCell makes a cell safe to open in a spreadsheet: one that starts with = + - @ (or a
// tab or carriage return, which some programs skip) gets a leading ' so it is never read
// as a formula (CSV injection).
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteAuditCSV writes the events matching f (newest first, Limit and Offset ignored, at
// most MaxAuditExport) as CSV: RFC 4180 quoting and CRLF line ends, a header row, times
// in RFC 3339 UTC, every text cell made safe by SafeCell.
func WriteAuditCSV(ctx context.Context, st store.Audit, f store.AuditFilter, w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(AuditCSVHeader); err != nil {
		return err
	}
	const batch = 1000
	for off := 0; off < MaxAuditExport; off += batch {
		f.Limit, f.Offset = batch, off
		events, err := st.SearchAudit(ctx, f)
		if err != nil {
			return fmt.Errorf("read the audit log: %w", err)
		}
		for _, e := range events {
			if err := cw.Write([]string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339Nano),
				SafeCell(e.Actor), SafeCell(e.Action), SafeCell(e.Object), SafeCell(e.Old), SafeCell(e.New)}); err != nil {
				return err
			}
		}
		if len(events) < batch {
			break
		}
	}
	cw.Flush()
	return cw.Error()
}
