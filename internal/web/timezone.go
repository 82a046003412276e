package web

import (
	"fmt"
	"html/template"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// Pages show times in the signed-in user's time zone (store.User.TimeZone, an IANA name;
// empty means UTC), always with the zone named, "Mon 7 Dec 2026 14:05 CET". The API keeps
// RFC 3339 in UTC.
//
// The templates call "datetime" and "date" without a zone, so each zone gets its own parsed
// copy of the pages with those functions bound to it, made on first use and kept: there are
// only as many copies as zones the users have chosen.

// zonePages holds the parsed pages per time zone name ("" = UTC).
type zonePages struct {
	parse func(loc *time.Location) (map[string]*template.Template, error)

	mu     sync.Mutex
	byZone map[string]map[string]*template.Template
}

// get returns the pages for zone, parsing them on first use. A zone that no longer loads
// (the system's time zone data changed since it was saved) falls back to UTC, which the
// pages then name.
func (z *zonePages) get(zone string) (map[string]*template.Template, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if p, ok := z.byZone[zone]; ok {
		return p, nil
	}
	loc := userLocation(zone)
	if loc == time.UTC && zone != "" {
		if p, ok := z.byZone[""]; ok {
			z.byZone[zone] = p
			return p, nil
		}
	}
	p, err := z.parse(loc)
	if err != nil {
		return nil, fmt.Errorf("pages for time zone %q: %w", zone, err)
	}
	z.byZone[zone] = p
	return p, nil
}

// userLocation loads an IANA zone name; "" and names that do not load are UTC.
func userLocation(zone string) *time.Location {
	if zone == "" || zone == "Local" {
		return time.UTC
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// userLocationOf is the zone pages show u's times in.
func userLocationOf(u store.User) *time.Location { return userLocation(u.TimeZone) }

// timeFuncs are the template functions that depend on the viewer's zone.
func timeFuncs(loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"datetime": func(t time.Time) string { return formatTimeIn(t, loc) },
		"date":     func(t time.Time) string { return formatDateIn(t, loc) },
	}
}

// formatTimeIn shows t in loc with the zone named: "Mon 7 Dec 2026 14:05 CET" ("never"
// for the zero time). Zones without an abbreviation are named by their offset, "+04".
func formatTimeIn(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "never"
	}
	return t.In(loc).Format("Mon 2 Jan 2006 15:04 MST")
}

// formatDateIn shows the day of t in loc (a client secret's expiry), without a time.
func formatDateIn(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "not recorded"
	}
	return t.In(loc).Format("Mon 2 Jan 2006")
}
