package workitem

import (
	"fmt"
	"net/url"
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

// maxQueryLen bounds the search text q, in bytes: a search is a few words.
const maxQueryLen = 1000

// filterKeys are the query parameters that choose which work items a list shows (the rest,
// limit and offset, choose the page): what a saved view keeps.
var filterKeys = []string{"q", "state", "queue", "assignee", "sort"}

// FilterQuery returns the filter parameters of q (filterKeys, without the empty ones and
// the page) as a query string in a fixed order: the form a saved view keeps.
func FilterQuery(q url.Values) string {
	out := url.Values{}
	for _, k := range filterKeys {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			out.Set(k, v)
		}
	}
	return out.Encode()
}

// ParseFilter is ParseFilterFor without a signed-in user: assignee=me is refused.
func ParseFilter(q map[string][]string) (store.WorkItemFilter, map[string]string) {
	return ParseFilterFor(q, 0)
}

// ParseFilterFor reads q, state, queue, assignee, sort, limit and offset from a query
// string (the work item list of the pages and the API), for the user with id me. q is
// a full-text search of the conversations (store.WorkItemFilter.Query: any text is
// accepted, nothing in it is syntax); assignee is "me", "none" (assigned to nobody) or a
// user id. It returns field errors for values it cannot use.
func ParseFilterFor(q map[string][]string, me int64) (store.WorkItemFilter, map[string]string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	f := store.WorkItemFilter{Query: get("q"), State: get("state"), Sort: get("sort"), Limit: defaultListLimit}
	fields := map[string]string{}
	if len(f.Query) > maxQueryLen {
		fields["q"] = fmt.Sprintf("search for at most %d characters: a few words find the conversation", maxQueryLen)
	}
	switch v := get("assignee"); v {
	case "":
	case "none":
		f.Unassigned = true
	case "me":
		if me == 0 {
			fields["assignee"] = "use none or a user id (me needs a signed-in user)"
		}
		f.AssignedTo = me
	default:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			fields["assignee"] = "use me, none (assigned to nobody) or a user id"
		}
		f.AssignedTo = n
	}
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
