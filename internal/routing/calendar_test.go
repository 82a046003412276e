package routing

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func mustSchedule(t *testing.T, c Calendar) *Schedule {
	t.Helper()
	if c.Name == "" {
		c.Name = "test"
	}
	s, err := c.Compile()
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

// weekdays returns 09:00-17:00 (or the given range) Monday to Friday.
func weekdays(start, end string) []Hours {
	var h []Hours
	for _, d := range []string{"mon", "tue", "wed", "thu", "fri"} {
		h = append(h, Hours{Day: d, Start: start, End: end})
	}
	return h
}

func everyDay(start, end string) []Hours {
	var h []Hours
	for _, d := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		h = append(h, Hours{Day: d, Start: start, End: end})
	}
	return h
}

func fieldErrors(t *testing.T, err error) map[string]string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	return ve.Fields
}

func TestAddBusinessOverWeekend(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	s := mustSchedule(t, Calendar{TimeZone: "Europe/Berlin", Hours: weekdays("09:00", "17:00")})
	fri := time.Date(2026, 3, 6, 16, 0, 0, 0, berlin)
	if fri.Weekday() != time.Friday {
		t.Fatalf("fixture: %v is not a Friday", fri)
	}
	mon10 := time.Date(2026, 3, 9, 10, 0, 0, 0, berlin)
	if got := s.AddBusiness(fri, 2*time.Hour); !got.Equal(mon10) {
		t.Errorf("Friday 16:00 + 2h = %v, want %v", got, mon10)
	}
	if got := s.BusinessDuration(fri, mon10); got != 2*time.Hour {
		t.Errorf("BusinessDuration(Fri 16:00, Mon 10:00) = %v, want 2h", got)
	}
	// Using up the day exactly ends at closing, not at the next opening.
	if got, want := s.AddBusiness(fri, time.Hour), time.Date(2026, 3, 6, 17, 0, 0, 0, berlin); !got.Equal(want) {
		t.Errorf("Friday 16:00 + 1h = %v, want %v", got, want)
	}
	// Outside hours, counting starts at the next opening.
	sat := time.Date(2026, 3, 7, 12, 0, 0, 0, berlin)
	if got, want := s.AddBusiness(sat, 30*time.Minute), time.Date(2026, 3, 9, 9, 30, 0, 0, berlin); !got.Equal(want) {
		t.Errorf("Saturday + 30m = %v, want %v", got, want)
	}
	if got, want := s.AddBusiness(sat, 0), sat; !got.Equal(want) {
		t.Errorf("AddBusiness(sat, 0) = %v, want %v", got, want)
	}
	if got := s.BusinessDuration(mon10, fri); got != 0 {
		t.Errorf("BusinessDuration backwards = %v, want 0", got)
	}
	if next, ok := s.NextOpen(sat); !ok || !next.Equal(time.Date(2026, 3, 9, 9, 0, 0, 0, berlin)) {
		t.Errorf("NextOpen(Saturday) = %v, %v; want Monday 09:00", next, ok)
	}

	for _, c := range []struct {
		at   time.Time
		open bool
	}{
		{time.Date(2026, 3, 6, 8, 59, 59, 0, berlin), false},
		{time.Date(2026, 3, 6, 9, 0, 0, 0, berlin), true},
		{time.Date(2026, 3, 6, 16, 59, 0, 0, berlin), true},
		{time.Date(2026, 3, 6, 17, 0, 0, 0, berlin), false},
		{sat, false},
		// 08:30 UTC is 09:30 in Berlin in March: Open reads the calendar's zone.
		{time.Date(2026, 3, 9, 8, 30, 0, 0, time.UTC), true},
	} {
		if got := s.Open(c.at); got != c.open {
			t.Errorf("Open(%v) = %v, want %v", c.at, got, c.open)
		}
	}
}

func TestHolidayAndSpecialDay(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	s := mustSchedule(t, Calendar{
		TimeZone: "Europe/Berlin",
		Hours:    weekdays("09:00", "17:00"),
		Holidays: []Holiday{{Date: "2026-03-09", Name: "Closed Monday"}, {Date: "2026-12-25", Name: "Christmas"}},
		Special:  []SpecialDay{{Date: "2026-12-24", Name: "Christmas Eve", Hours: []TimeRange{{Start: "09:00", End: "12:00"}}}, {Date: "2026-12-31"}},
	})
	fri := time.Date(2026, 3, 6, 16, 0, 0, 0, berlin)
	if got, want := s.AddBusiness(fri, 2*time.Hour), time.Date(2026, 3, 10, 10, 0, 0, 0, berlin); !got.Equal(want) {
		t.Errorf("Friday 16:00 + 2h over a Monday holiday = %v, want Tuesday 10:00 %v", got, want)
	}
	if s.Open(time.Date(2026, 3, 9, 10, 0, 0, 0, berlin)) {
		t.Error("open on a holiday")
	}
	// Thursday 24 December 11:00: one hour left that day (short hours), Friday 25th is a
	// holiday, so the second hour is Monday 28th 09:00-10:00.
	eve := time.Date(2026, 12, 24, 11, 0, 0, 0, berlin)
	if got, want := s.AddBusiness(eve, 2*time.Hour), time.Date(2026, 12, 28, 10, 0, 0, 0, berlin); !got.Equal(want) {
		t.Errorf("24 Dec 11:00 + 2h = %v, want %v", got, want)
	}
	if s.Open(time.Date(2026, 12, 24, 12, 0, 0, 0, berlin)) {
		t.Error("open after a special day's short hours")
	}
	// A special day with no hours is closed although it is a Thursday.
	if got := s.BusinessDuration(time.Date(2026, 12, 31, 0, 0, 0, 0, berlin), time.Date(2027, 1, 1, 0, 0, 0, 0, berlin)); got != 0 {
		t.Errorf("business time on a closed special day = %v, want 0", got)
	}
	if got := s.BusinessDuration(time.Date(2026, 12, 24, 0, 0, 0, 0, berlin), time.Date(2026, 12, 29, 0, 0, 0, 0, berlin)); got != 11*time.Hour {
		t.Errorf("24-28 Dec = %v, want 11h (3h + 0 + 8h)", got)
	}
}

func TestDSTDays(t *testing.T) {
	for _, c := range []struct {
		zone         string
		spring, fall [3]int // y, m, d of the Sundays the clocks change
	}{
		{"Europe/Berlin", [3]int{2026, 3, 29}, [3]int{2026, 10, 25}},
		{"America/New_York", [3]int{2026, 3, 8}, [3]int{2026, 11, 1}},
	} {
		t.Run(c.zone, func(t *testing.T) {
			loc := mustLoc(t, c.zone)
			date := func(d [3]int, h, m int) time.Time {
				return time.Date(d[0], time.Month(d[1]), d[2], h, m, 0, 0, loc)
			}
			whole := mustSchedule(t, Calendar{TimeZone: c.zone, Hours: []Hours{{Day: "sun", Start: "00:00", End: "24:00"}}})
			springDay := whole.BusinessDuration(date(c.spring, 0, 0), date(c.spring, 24, 0))
			if springDay != 23*time.Hour {
				t.Errorf("spring-forward Sunday 00:00-24:00 = %v, want 23h", springDay)
			}
			if got := whole.BusinessDuration(date(c.fall, 0, 0), date(c.fall, 24, 0)); got != 25*time.Hour {
				t.Errorf("fall-back Sunday 00:00-24:00 = %v, want 25h", got)
			}
			// 23h of business time from the spring Sunday's midnight end at Monday 00:00
			// local; 30 minutes more are the next Sunday's first half hour.
			if got, want := whole.AddBusiness(date(c.spring, 0, 0), 23*time.Hour), date(c.spring, 24, 0); !got.Equal(want) {
				t.Errorf("spring Sunday + 23h = %v, want %v", got, want)
			}
			if got, want := whole.AddBusiness(date(c.spring, 0, 0), 23*time.Hour+30*time.Minute), date(c.spring, 7*24, 30); !got.Equal(want) {
				t.Errorf("spring Sunday + 23h30m = %v, want %v", got, want)
			}
			// 01:00-04:00 spans the jump (at 02:00 in both zones): 2h in spring, 4h in autumn.
			night := mustSchedule(t, Calendar{TimeZone: c.zone, Hours: []Hours{{Day: "sun", Start: "01:00", End: "04:00"}}})
			if got := night.BusinessDuration(date(c.spring, 0, 0), date(c.spring, 12, 0)); got != 2*time.Hour {
				t.Errorf("spring Sunday 01:00-04:00 = %v, want 2h", got)
			}
			if got := night.BusinessDuration(date(c.fall, 0, 0), date(c.fall, 12, 0)); got != 4*time.Hour {
				t.Errorf("fall Sunday 01:00-04:00 = %v, want 4h", got)
			}
			// 09:00-17:00 is untouched by a change at night.
			office := mustSchedule(t, Calendar{TimeZone: c.zone, Hours: everyDay("09:00", "17:00")})
			for _, d := range [][3]int{c.spring, c.fall} {
				if got := office.BusinessDuration(date(d, 0, 0), date(d, 24, 0)); got != 8*time.Hour {
					t.Errorf("%v 09:00-17:00 = %v, want 8h", d, got)
				}
			}
			// Saturday 16:00 + 2h = Sunday 10:00 local, whatever the UTC offset did overnight.
			for _, d := range [][3]int{c.spring, c.fall} {
				sat := time.Date(d[0], time.Month(d[1]), d[2]-1, 16, 0, 0, 0, loc)
				if got, want := office.AddBusiness(sat, 2*time.Hour), date(d, 10, 0); !got.Equal(want) {
					t.Errorf("Saturday 16:00 before %v + 2h = %v, want %v", d, got, want)
				}
			}
		})
	}
}

func TestTwentyFourSeven(t *testing.T) {
	s := mustSchedule(t, Calendar{TimeZone: "Europe/Berlin"})
	from := time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC)
	// No hours: open around the clock, business time is wall-clock time (also across
	// Berlin's DST change that night).
	if got, want := s.AddBusiness(from, 50*time.Hour), from.Add(50*time.Hour); !got.Equal(want) {
		t.Errorf("24x7 AddBusiness = %v, want %v", got, want)
	}
	if got := s.BusinessDuration(from, from.Add(50*time.Hour)); got != 50*time.Hour {
		t.Errorf("24x7 BusinessDuration = %v, want 50h", got)
	}
	if !s.Open(from) {
		t.Error("24x7 calendar closed")
	}
	var none *Schedule
	if got, want := none.AddBusiness(from, time.Hour), from.Add(time.Hour); !got.Equal(want) || !none.Open(from) || none.BusinessDuration(from, want) != time.Hour {
		t.Errorf("nil schedule is not 24x7: AddBusiness = %v", got)
	}

	// No weekly hours but a holiday: open around the clock except that date.
	berlin := mustLoc(t, "Europe/Berlin")
	h := mustSchedule(t, Calendar{TimeZone: "Europe/Berlin", Holidays: []Holiday{{Date: "2026-12-25"}}})
	eve := time.Date(2026, 12, 24, 23, 0, 0, 0, berlin)
	if got, want := h.AddBusiness(eve, 2*time.Hour), time.Date(2026, 12, 26, 1, 0, 0, 0, berlin); !got.Equal(want) {
		t.Errorf("24x7 with a holiday: 24 Dec 23:00 + 2h = %v, want %v", got, want)
	}
}

func TestTouchingRangesJoin(t *testing.T) {
	s := mustSchedule(t, Calendar{Hours: []Hours{
		{Day: "mon", Start: "12:00", End: "17:00"},
		{Day: "mon", Start: "09:00", End: "12:00"},
		{Day: "tue", Start: "09:00", End: "12:00"},
		{Day: "tue", Start: "13:00", End: "17:00"},
	}})
	mon := time.Date(2026, 3, 9, 11, 0, 0, 0, time.UTC)
	if got, want := s.AddBusiness(mon, 2*time.Hour), mon.Add(2*time.Hour); !got.Equal(want) {
		t.Errorf("across touching ranges = %v, want %v", got, want)
	}
	tue := time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC)
	if got, want := s.AddBusiness(tue, 2*time.Hour), tue.Add(3*time.Hour); !got.Equal(want) {
		t.Errorf("across a lunch break = %v, want %v", got, want)
	}
}

func TestBusinessDurationYear(t *testing.T) {
	s := mustSchedule(t, Calendar{TimeZone: "Europe/Berlin", Hours: weekdays("09:00", "17:00")})
	berlin := mustLoc(t, "Europe/Berlin")
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, berlin)
	to := time.Date(2027, 1, 1, 0, 0, 0, 0, berlin)
	// 2026 starts on a Thursday and has 365 days: 52 weeks and a Thursday, 261 weekdays.
	if got := s.BusinessDuration(from, to); got != 261*8*time.Hour {
		t.Errorf("2026 = %v, want %v", got, 261*8*time.Hour)
	}
	if got := s.AddBusiness(from, 261*8*time.Hour); !got.Equal(time.Date(2026, 12, 31, 17, 0, 0, 0, berlin)) {
		t.Errorf("AddBusiness(a year's hours) = %v, want 31 Dec 17:00", got)
	}
}

// AddBusiness and BusinessDuration are inverses, on any calendar and in any zone.
func TestAddBusinessInverse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cals := []Calendar{
		{TimeZone: "Europe/Berlin", Hours: weekdays("09:00", "17:00"), Holidays: []Holiday{{Date: "2026-04-03"}}},
		{TimeZone: "America/New_York", Hours: []Hours{{Day: "sun", Start: "01:00", End: "03:30"}, {Day: "sat", Start: "22:00", End: "24:00"}}},
		{TimeZone: "Europe/Berlin", Hours: everyDay("00:00", "24:00")},
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for ci, c := range cals {
		s := mustSchedule(t, c)
		for i := 0; i < 300; i++ {
			from := base.Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
			d := time.Duration(r.Int64N(int64(200 * time.Hour)))
			to := s.AddBusiness(from, d)
			if got := s.BusinessDuration(from, to); got != d {
				t.Fatalf("calendar %d: BusinessDuration(%v, AddBusiness(+%v) = %v) = %v", ci, from, d, to, got)
			}
			if d > 0 && !s.Open(to.Add(-time.Nanosecond)) {
				t.Fatalf("calendar %d: AddBusiness(%v, %v) = %v, not just after open time", ci, from, d, to)
			}
		}
	}
}

func TestNeverOpens(t *testing.T) {
	// Open on Mondays only, and every Monday for three years is a holiday.
	var hol []Holiday
	for d := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC); d.Year() < 2029; d = d.AddDate(0, 0, 7) {
		hol = append(hol, Holiday{Date: d.Format(time.DateOnly)})
	}
	s := mustSchedule(t, Calendar{Hours: []Hours{{Day: "mon", Start: "09:00", End: "17:00"}}, Holidays: hol})
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := s.AddBusiness(from, time.Hour); !got.IsZero() {
		t.Errorf("AddBusiness on a calendar closed for 3 years = %v, want the zero Time", got)
	}
	if got, ok := s.NextOpen(from); ok {
		t.Errorf("NextOpen = %v, true; want false", got)
	}
	if got := s.BusinessDuration(from, from.AddDate(3, 0, 0)); got != 0 {
		t.Errorf("BusinessDuration = %v, want 0", got)
	}
	// From a later start, the first open Monday is within reach.
	late := time.Date(2028, 12, 1, 0, 0, 0, 0, time.UTC)
	if got, want := s.AddBusiness(late, time.Hour), time.Date(2029, 1, 1, 10, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("AddBusiness from Dec 2028 = %v, want %v", got, want)
	}
}

func TestCalendarValidate(t *testing.T) {
	good := Calendar{Name: "Office", TimeZone: "Europe/Berlin", Hours: weekdays("09:00", "17:00")}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid calendar refused: %v", err)
	}
	for _, c := range []struct {
		name  string
		edit  func(*Calendar)
		field string
		want  string // part of the message
	}{
		{"no name", func(c *Calendar) { c.Name = " " }, "name", "enter a name"},
		{"bad zone", func(c *Calendar) { c.TimeZone = "Mars/Olympus" }, "time_zone", `unknown time zone "Mars/Olympus"`},
		{"local zone", func(c *Calendar) { c.TimeZone = "Local" }, "time_zone", "IANA"},
		{"bad day", func(c *Calendar) { c.Hours[2].Day = "weekday" }, "hours[2].day", "mon, tue"},
		{"bad start", func(c *Calendar) { c.Hours[0].Start = "9:00" }, "hours[0].start", "HH:MM"},
		{"start 24:00", func(c *Calendar) { c.Hours[0].Start = "24:00" }, "hours[0].start", "HH:MM"},
		{"bad end", func(c *Calendar) { c.Hours[0].End = "24:30" }, "hours[0].end", "HH:MM"},
		{"end before start", func(c *Calendar) { c.Hours[1].End = "08:00" }, "hours[1].end", "after the opening time 09:00"},
		{"overlap", func(c *Calendar) {
			c.Hours = append(c.Hours, Hours{Day: "tue", Start: "16:00", End: "18:00"})
		}, "hours[5]", "tue 16:00-18:00 overlaps hours[1] (09:00-17:00)"},
		{"bad holiday", func(c *Calendar) { c.Holidays = []Holiday{{Date: "2026-02-30"}} }, "holidays[0].date", "YYYY-MM-DD"},
		{"duplicate holiday", func(c *Calendar) {
			c.Holidays = []Holiday{{Date: "2026-12-25"}, {Date: "2026-12-26"}, {Date: "2026-12-25"}}
		}, "holidays[2].date", "already holidays[0]"},
		{"special on holiday", func(c *Calendar) {
			c.Holidays = []Holiday{{Date: "2026-12-25"}}
			c.Special = []SpecialDay{{Date: "2026-12-25"}}
		}, "special_days[0].date", "is a holiday"},
		{"special bad hours", func(c *Calendar) {
			c.Special = []SpecialDay{{Date: "2026-12-24", Hours: []TimeRange{{Start: "12:00", End: "10:00"}}}}
		}, "special_days[0].hours[0].end", "after the opening time 12:00"},
		{"special overlap", func(c *Calendar) {
			c.Special = []SpecialDay{{Date: "2026-12-24", Hours: []TimeRange{{Start: "09:00", End: "12:00"}, {Start: "11:00", End: "13:00"}}}}
		}, "special_days[0].hours[1]", "11:00-13:00 overlaps special_days[0].hours[0] (09:00-12:00)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cal := good
			cal.Hours = append([]Hours(nil), good.Hours...)
			c.edit(&cal)
			err := cal.Validate()
			fields := fieldErrors(t, err)
			if msg, ok := fields[c.field]; !ok || !strings.Contains(msg, c.want) {
				t.Errorf("field %q: got %q (all: %v), want a message containing %q", c.field, msg, fields, c.want)
			}
			if _, err := cal.Compile(); err == nil {
				t.Error("Compile accepted an invalid calendar")
			}
		})
	}
}

func ExampleSchedule_AddBusiness() {
	s, _ := Calendar{Name: "Office", TimeZone: "Europe/Berlin", Hours: weekdays("09:00", "17:00")}.Compile()
	loc := s.Location()
	fri := time.Date(2026, 3, 6, 16, 0, 0, 0, loc)
	fmt.Println(s.AddBusiness(fri, 2*time.Hour).Format("Mon 15:04"))
	// Output: Mon 10:00
}
