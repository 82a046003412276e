package routing

import (
	"sort"
	"strings"
)

// ValidationError lists what is wrong with a configuration object, by field. Keys are the
// API's JSON field names (with a path for nested ones, e.g. "points[2].age"); each message
// says what to enter.
type ValidationError struct {
	What   string // the kind of object, e.g. "calendar"
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
	what := e.What
	if what == "" {
		what = "the input"
	}
	return what + " has errors: " + strings.Join(parts, "; ")
}

// Add records msg for field unless the field has a message already.
func (e *ValidationError) Add(field, msg string) {
	if e.Fields == nil {
		e.Fields = map[string]string{}
	}
	if _, ok := e.Fields[field]; !ok {
		e.Fields[field] = msg
	}
}

// OrNil returns e when it holds a field, nil otherwise, so that a validator can end with
// `return errs.OrNil()`.
func (e *ValidationError) OrNil() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}
