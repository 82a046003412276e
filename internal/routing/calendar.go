package routing

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Calendar is a business calendar: the hours a queue is staffed. SLA clocks and
// prioritisation schemas that count "business time" count only the open hours of the
// queue's calendar, so that a message arriving on Friday evening is not overdue on
// Monday morning.
//
// All wall-clock times are read in TimeZone, so "09:00" stays 09:00 local time across
// daylight-saving changes.
type Calendar struct {
	ID       int64        `json:"id"`
	Name     string       `json:"name"`
	TimeZone string       `json:"time_zone"`    // IANA name, e.g. "Europe/Berlin"; "" = UTC
	Hours    []Hours      `json:"hours"`        // weekly opening hours; none at all = open 24 hours every day
	Holidays []Holiday    `json:"holidays"`     // dates closed all day
	Special  []SpecialDay `json:"special_days"` // dates with their own hours instead of the weekday's
}

// Hours is one opening range on a weekday. A day may have several non-overlapping
// ranges (e.g. 09:00-12:00 and 13:00-17:00). End may be "24:00" for "until midnight".
type Hours struct {
	Day   string `json:"day"`   // "mon" .. "sun"
	Start string `json:"start"` // "09:00"
	End   string `json:"end"`   // "17:00"; "24:00" allowed
}

// Holiday closes the calendar for a whole local date.
type Holiday struct {
	Date string `json:"date"` // "2026-12-25"
	Name string `json:"name"` // optional, e.g. "Christmas"
}

// SpecialDay replaces the weekday's hours on one local date, e.g. short hours on
// Christmas Eve. Empty Hours means closed that day.
type SpecialDay struct {
	Date  string      `json:"date"` // "2026-12-24"
	Name  string      `json:"name"` // optional
	Hours []TimeRange `json:"hours"`
}

// TimeRange is an opening range within a special day.
type TimeRange struct {
	Start string `json:"start"` // "09:00"
	End   string `json:"end"`   // "13:00"; "24:00" allowed
}

// SearchHorizon bounds how far Schedule looks ahead for open time. A calendar that has no
// open time at all within this span of consecutive days (e.g. years of holidays) is treated
// as never opening again, instead of being searched forever.
const SearchHorizon = 2 * 366 * 24 * time.Hour

const searchDays = 2 * 366

// maxNameLen bounds names of configuration objects in this package.
const maxNameLen = 200

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Validate reports every problem in c as a *ValidationError (nil when c is valid).
func (c Calendar) Validate() error {
	errs := &ValidationError{What: "calendar"}
	validateName(errs, c.Name, "calendar")
	if c.TimeZone == "Local" {
		errs.Add("time_zone", `enter an IANA time zone such as "Europe/Berlin" ("Local" depends on the server)`)
	} else if _, err := time.LoadLocation(c.TimeZone); err != nil {
		errs.Add("time_zone", fmt.Sprintf("unknown time zone %q: enter an IANA name such as \"Europe/Berlin\", or leave empty for UTC", c.TimeZone))
	}

	// Weekly hours: each range valid, and no two ranges on the same day overlap.
	type placed struct {
		idx        int
		start, end int
	}
	byDay := map[time.Weekday][]placed{}
	for i, h := range c.Hours {
		f := fmt.Sprintf("hours[%d]", i)
		wd, ok := dayNames[strings.ToLower(h.Day)]
		if !ok {
			errs.Add(f+".day", "enter a weekday: mon, tue, wed, thu, fri, sat or sun")
		}
		s, e, ok2 := validateRange(errs, f, h.Start, h.End)
		if !ok || !ok2 {
			continue
		}
		for _, p := range byDay[wd] {
			if s < p.end && p.start < e {
				errs.Add(f, fmt.Sprintf("%s %s-%s overlaps hours[%d] (%s-%s): make the ranges of one day not overlap",
					strings.ToLower(h.Day), h.Start, h.End, p.idx, c.Hours[p.idx].Start, c.Hours[p.idx].End))
				break
			}
		}
		byDay[wd] = append(byDay[wd], placed{i, s, e})
	}

	holidays := map[string]int{}
	for i, h := range c.Holidays {
		f := fmt.Sprintf("holidays[%d]", i)
		if !validDate(h.Date) {
			errs.Add(f+".date", "enter the date as YYYY-MM-DD, e.g. 2026-12-25")
			continue
		}
		if j, dup := holidays[h.Date]; dup {
			errs.Add(f+".date", fmt.Sprintf("%s is already holidays[%d]: enter each holiday once", h.Date, j))
			continue
		}
		holidays[h.Date] = i
		if len(h.Name) > maxNameLen {
			errs.Add(f+".name", fmt.Sprintf("enter at most %d characters", maxNameLen))
		}
	}

	specials := map[string]int{}
	for i, sd := range c.Special {
		f := fmt.Sprintf("special_days[%d]", i)
		if !validDate(sd.Date) {
			errs.Add(f+".date", "enter the date as YYYY-MM-DD, e.g. 2026-12-24")
		} else if j, dup := specials[sd.Date]; dup {
			errs.Add(f+".date", fmt.Sprintf("%s is already special_days[%d]: enter each special day once", sd.Date, j))
		} else if j, hol := holidays[sd.Date]; hol {
			errs.Add(f+".date", fmt.Sprintf("%s is a holiday (holidays[%d]): remove one of the two", sd.Date, j))
		} else {
			specials[sd.Date] = i
		}
		if len(sd.Name) > maxNameLen {
			errs.Add(f+".name", fmt.Sprintf("enter at most %d characters", maxNameLen))
		}
		var ranges []placed
		for k, r := range sd.Hours {
			rf := fmt.Sprintf("%s.hours[%d]", f, k)
			s, e, ok := validateRange(errs, rf, r.Start, r.End)
			if !ok {
				continue
			}
			for _, p := range ranges {
				if s < p.end && p.start < e {
					errs.Add(rf, fmt.Sprintf("%s-%s overlaps %s.hours[%d] (%s-%s): make the ranges of one day not overlap",
						r.Start, r.End, f, p.idx, sd.Hours[p.idx].Start, sd.Hours[p.idx].End))
					break
				}
			}
			ranges = append(ranges, placed{k, s, e})
		}
	}
	return errs.OrNil()
}

func validateName(errs *ValidationError, name, what string) {
	switch {
	case strings.TrimSpace(name) == "":
		errs.Add("name", "enter a name for the "+what)
	case len(name) > maxNameLen:
		errs.Add("name", fmt.Sprintf("enter at most %d characters", maxNameLen))
	}
}

// validateRange checks one start/end pair under field prefix f and returns the minutes
// after midnight. ok is false when either is invalid (the range's slot in an overlap check
// is then left out, so one typo does not also report overlaps).
func validateRange(errs *ValidationError, f, start, end string) (s, e int, ok bool) {
	s, okS := parseClock(start)
	if !okS || s == 24*60 {
		errs.Add(f+".start", "enter the opening time as HH:MM, 00:00 to 23:59")
		okS = false
	}
	e, okE := parseClock(end)
	if !okE || e == 0 {
		errs.Add(f+".end", "enter the closing time as HH:MM, 00:01 to 24:00")
		okE = false
	}
	if !okS || !okE {
		return 0, 0, false
	}
	if e <= s {
		errs.Add(f+".end", fmt.Sprintf("enter a closing time after the opening time %s", start))
		return 0, 0, false
	}
	return s, e, true
}

// parseClock parses "HH:MM" (00:00 to 24:00) into minutes after midnight.
func parseClock(v string) (int, bool) {
	if len(v) != 5 || v[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	h := int(v[0]-'0')*10 + int(v[1]-'0')
	m := int(v[3]-'0')*10 + int(v[4]-'0')
	if m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

func validDate(v string) bool {
	_, err := time.Parse(time.DateOnly, v)
	return err == nil && len(v) == 10
}

// span is an opening range in minutes after local midnight, [start, end).
type span struct{ start, end int }

// civil is a local calendar date, kept as midnight UTC so that date arithmetic ignores
// time zones.
type civil = time.Time

// dateKey indexes holidays and special days by date: 2026-12-25 is 20261225.
func dateKey(d civil) int {
	y, m, dd := d.Date()
	return y*10000 + int(m)*100 + dd
}

// Schedule is a compiled Calendar: the location is loaded once and the hours are indexed
// by weekday and date. It is immutable and safe for concurrent use.
//
// A nil *Schedule is open 24 hours a day, every day: business time equals wall-clock time.
type Schedule struct {
	loc      *time.Location
	week     [7][]span
	holidays map[int]bool
	special  map[int][]span
	always   bool // no hours, holidays or special days: business time is wall-clock time
}

// Compile validates c and returns its Schedule.
func (c Calendar) Compile() (*Schedule, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	loc, _ := time.LoadLocation(c.TimeZone) // checked by Validate
	s := &Schedule{loc: loc, holidays: map[int]bool{}, special: map[int][]span{}}
	if len(c.Hours) == 0 {
		for d := range s.week {
			s.week[d] = []span{{0, 24 * 60}}
		}
	}
	for _, h := range c.Hours {
		wd := dayNames[strings.ToLower(h.Day)]
		st, _ := parseClock(h.Start)
		en, _ := parseClock(h.End)
		s.week[wd] = append(s.week[wd], span{st, en})
	}
	for d := range s.week {
		s.week[d] = mergeSpans(s.week[d])
	}
	for _, h := range c.Holidays {
		d, _ := time.Parse(time.DateOnly, h.Date)
		s.holidays[dateKey(d)] = true
	}
	for _, sd := range c.Special {
		d, _ := time.Parse(time.DateOnly, sd.Date)
		var spans []span
		for _, r := range sd.Hours {
			st, _ := parseClock(r.Start)
			en, _ := parseClock(r.End)
			spans = append(spans, span{st, en})
		}
		s.special[dateKey(d)] = mergeSpans(spans)
	}
	s.always = len(c.Hours) == 0 && len(c.Holidays) == 0 && len(c.Special) == 0
	return s, nil
}

// mergeSpans sorts spans and joins touching ones (09:00-12:00 and 12:00-17:00 become
// 09:00-17:00), so that business time runs through the join without a break.
func mergeSpans(in []span) []span {
	sort.Slice(in, func(i, j int) bool { return in[i].start < in[j].start })
	var out []span
	for _, sp := range in {
		if n := len(out); n > 0 && sp.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// Location returns the schedule's time zone (UTC for a nil Schedule).
func (s *Schedule) Location() *time.Location {
	if s == nil {
		return time.UTC
	}
	return s.loc
}

// dateOf returns the local date of t.
func (s *Schedule) dateOf(t time.Time) civil {
	y, m, d := t.In(s.loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// interval is a half-open span of instants [from, to).
type interval struct{ from, to time.Time }

// day returns the open intervals of local date d, in order and non-overlapping. Each is
// built from wall-clock times with time.Date in the location, so a day where the clocks
// jump inside the opening hours is that much shorter or longer, and a range inside the
// skipped hour is empty.
func (s *Schedule) day(d civil, buf []interval) []interval {
	buf = buf[:0]
	k := dateKey(d)
	if s.holidays[k] {
		return buf
	}
	spans, ok := s.special[k]
	if !ok {
		spans = s.week[d.Weekday()]
	}
	y, m, dd := d.Date()
	for _, sp := range spans {
		from := time.Date(y, m, dd, sp.start/60, sp.start%60, 0, 0, s.loc)
		to := time.Date(y, m, dd, sp.end/60, sp.end%60, 0, 0, s.loc)
		if n := len(buf); n > 0 && from.Before(buf[n-1].to) {
			from = buf[n-1].to
		}
		if to.After(from) {
			buf = append(buf, interval{from, to})
		}
	}
	return buf
}

// Open reports whether the calendar is open at t.
func (s *Schedule) Open(t time.Time) bool {
	if s == nil || s.always {
		return true
	}
	var buf [4]interval
	// The previous date is checked too: where clocks fall back across midnight, an instant
	// can carry the previous local date while lying after this date's midnight.
	d := s.dateOf(t)
	for _, day := range []civil{d.AddDate(0, 0, -1), d} {
		for _, iv := range s.day(day, buf[:0]) {
			if !t.Before(iv.from) && t.Before(iv.to) {
				return true
			}
		}
	}
	return false
}

// NextOpen returns the first instant at or after t when the calendar is open, and false
// when it does not open within SearchHorizon.
func (s *Schedule) NextOpen(t time.Time) (time.Time, bool) {
	if s == nil || s.always {
		return t, true
	}
	var buf [4]interval
	d := s.dateOf(t).AddDate(0, 0, -1)
	for i := 0; i <= searchDays+1; i++ {
		for _, iv := range s.day(d, buf[:0]) {
			if iv.to.After(t) {
				if iv.from.After(t) {
					return iv.from, true
				}
				return t, true
			}
		}
		d = d.AddDate(0, 0, 1)
	}
	return time.Time{}, false
}

// BusinessDuration returns the open time between from and to (0 when to is not after
// from). It works day by day, so a span of months costs a few hundred steps.
func (s *Schedule) BusinessDuration(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	if s == nil || s.always {
		return to.Sub(from)
	}
	var total time.Duration
	var buf [4]interval
	last := s.dateOf(to)
	for d := s.dateOf(from).AddDate(0, 0, -1); !d.After(last); d = d.AddDate(0, 0, 1) {
		for _, iv := range s.day(d, buf[:0]) {
			a, b := iv.from, iv.to
			if a.Before(from) {
				a = from
			}
			if b.After(to) {
				b = to
			}
			if b.After(a) {
				total += b.Sub(a)
			}
		}
	}
	return total
}

// AddBusiness returns the instant at which d of business time has elapsed after from.
// When from is outside opening hours, counting starts at the next opening; the result can
// be a closing instant (Friday 16:00 plus 1 h of 09:00-17:00 is Friday 17:00, not Monday
// 09:00). d <= 0 returns from unchanged.
//
// When the calendar stays closed for SearchHorizon of consecutive days before d is used
// up, AddBusiness returns the zero Time: "never". Callers check IsZero.
func (s *Schedule) AddBusiness(from time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return from
	}
	if s == nil || s.always {
		return from.Add(d)
	}
	left := d
	closed := 0
	var buf [4]interval
	for day := s.dateOf(from).AddDate(0, 0, -1); closed <= searchDays+1; day = day.AddDate(0, 0, 1) {
		ivs := s.day(day, buf[:0])
		opened := false
		for _, iv := range ivs {
			if !iv.to.After(from) {
				continue
			}
			a := iv.from
			if a.Before(from) {
				a = from
			}
			opened = true
			avail := iv.to.Sub(a)
			if left <= avail {
				return a.Add(left)
			}
			left -= avail
		}
		if opened {
			closed = 0
		} else {
			closed++
		}
	}
	return time.Time{}
}

// Holiday reports whether t falls on one of the calendar's holidays (its local date).
func (s *Schedule) Holiday(t time.Time) bool {
	if s == nil || s.always {
		return false
	}
	return s.holidays[dateKey(s.dateOf(t))]
}
