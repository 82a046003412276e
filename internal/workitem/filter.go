package workitem

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/store"
)

// Listing limits: a page is 100 work items unless limit says otherwise, at most 500.
const (
	defaultListLimit = 100
	maxListLimit     = 500
)

// ReplyFieldError is the message for an empty reply, shared by the web form and the API.
const ReplyFieldError = "write a reply before sending"

// ParseFilter reads q, state, queue, sort, limit and offset from a query string (the
// work item list of the pages and the API). It returns
// field errors for values it cannot use.
func ParseFilter(q map[string][]string) (store.WorkItemFilter, map[string]string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	f := store.WorkItemFilter{Query: get("q"), State: get("state"), Sort: get("sort"), Limit: defaultListLimit}
	fields := map[string]string{}
	switch st := State(f.State); {
	case f.State == "":
	case f.State == "open":
		f.State = ""
		for _, s := range States {
			if s.Open() {
				f.States = append(f.States, string(s))
			}
		}
	case !st.Valid():
		fields["state"] = "use one of queued, offered, assigned, pending, on_hold, done, cancelled or open (any of the first five), or leave it out for all"
	}
	switch f.Sort {
	case "", "newest", "oldest", "priority":
	default:
		fields["sort"] = "use newest, oldest or priority"
	}
	if v := get("queue"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			fields["queue"] = "use a queue id"
		}
		f.QueueID = n
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			fields["limit"] = fmt.Sprintf("use a whole number from 1 to %d", maxListLimit)
		}
		f.Limit = n
	}
	if v := get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fields["offset"] = "use a whole number, 0 or more"
		}
		f.Offset = n
	}
	return f, fields
}
