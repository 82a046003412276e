package mstest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// deltaState is what a delta or skip token stands for.
type deltaState struct {
	mb       *mailbox
	folderID string
	// baseline: changes after this change seq are reported (a deltaLink's round).
	baseline int64
	// sel and pageSize of the round that handed out the deltaLink: the next round keeps
	// them unless the request names its own.
	sel      []string
	pageSize int
	// changeTypes is the round's changeType filter (nil: all changes).
	changeTypes map[string]bool
	// round is set for a skip token: the items of a round in progress from start on.
	round *deltaRound
	start int
	// issued is when the token was handed out (the server's clock): with
	// Options.DeltaTokenLifetime it stops working that long after.
	issued time.Time
}

// deltaRound is the list of changes of one round, fixed when the round begins.
type deltaRound struct {
	folderID string
	items    []deltaItem
	snapshot int64 // the change seq when the round began: the next deltaLink's baseline
	sel      []string
	pageSize int
	// changeTypes limits the changes reported (changeType=created,updated,deleted); nil:
	// all. A deltaLink keeps the filter of the round that handed it out.
	changeTypes map[string]bool
}

type deltaItem struct {
	immutableID string
	removed     *removal // set for @removed entries
}

// opDelta serves /mailFolders/{f}/messages/delta: a new round, or the page of a
// $skiptoken, or the round of a $deltatoken.
func (s *Server) opDelta(c *mailboxCall, rest []string) *graphResp {
	sel := selectList(c.query)
	if e := validSelect(sel); e != nil {
		return e
	}
	pageSize := s.opts.PageSize
	applied := []string{}
	var changeTypes map[string]bool
	if v := c.query.Get("changeType"); v != "" {
		changeTypes = map[string]bool{}
		for _, ct := range strings.Split(v, ",") {
			ct = strings.TrimSpace(ct)
			if ct != "created" && ct != "updated" && ct != "deleted" {
				return gerr(http.StatusBadRequest, "ErrorInvalidParameter", "Invalid changeType: "+ct)
			}
			changeTypes[ct] = true
		}
	}
	if v := prefer(c.header)["odata.maxpagesize"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return gerr(http.StatusBadRequest, "BadRequest", "Invalid odata.maxpagesize: "+v)
		}
		pageSize = min(n, 1000)
		applied = append(applied, "odata.maxpagesize="+strconv.Itoa(pageSize))
	}
	s.mu.Lock()
	f, e := c.folderLocked(rest[1])
	if e != nil {
		s.mu.Unlock()
		return e
	}
	var round *deltaRound
	start := 0
	switch {
	case c.query.Get("$skiptoken") != "":
		st := s.deltaTokenLocked(c.query.Get("$skiptoken"))
		if st == nil || st.round == nil || st.mb != c.mb || st.folderID != f.id {
			s.mu.Unlock()
			return s.syncStateNotFound()
		}
		round, start = st.round, st.start
	case c.query.Get("$deltatoken") != "":
		st := s.deltaTokenLocked(c.query.Get("$deltatoken"))
		if st == nil || st.round != nil || st.mb != c.mb || st.folderID != f.id {
			s.mu.Unlock()
			return s.syncStateNotFound()
		}
		if sel == nil {
			sel = st.sel
		}
		if prefer(c.header)["odata.maxpagesize"] == "" && st.pageSize > 0 {
			pageSize = st.pageSize
		}
		if changeTypes == nil {
			changeTypes = st.changeTypes
		}
		round = s.newRoundLocked(c.mb, f, st.baseline, sel, pageSize, changeTypes)
	default:
		round = s.newRoundLocked(c.mb, f, -1, sel, pageSize, changeTypes)
	}
	if c.query.Get("$skiptoken") != "" && prefer(c.header)["odata.maxpagesize"] == "" {
		pageSize = round.pageSize
	}
	end := min(start+pageSize, len(round.items))
	out := []any{}
	for _, it := range round.items[start:end] {
		out = append(out, s.deltaItemJSON(c, round, it))
	}
	base := s.graphURL + "/v1.0/" + pathOf(c.segs)
	resp := map[string]any{"@odata.context": s.graphURL + "/v1.0/$metadata#Collection(message)", "value": out}
	issued := s.nowLocked()
	if end < len(round.items) {
		tok := randomToken(48)
		s.state.graph.delta[tok] = &deltaState{mb: c.mb, folderID: f.id, round: round, start: end, issued: issued}
		resp["@odata.nextLink"] = base + "?$skiptoken=" + tok
	} else {
		tok := randomToken(64)
		s.state.graph.delta[tok] = &deltaState{mb: c.mb, folderID: f.id, baseline: round.snapshot, sel: round.sel, pageSize: pageSize,
			changeTypes: round.changeTypes, issued: issued}
		resp["@odata.deltaLink"] = base + "?$deltatoken=" + tok
	}
	s.mu.Unlock()
	r := gjson(http.StatusOK, resp)
	if c.immutable {
		applied = append(applied, `IdType="ImmutableId"`)
	}
	if len(applied) > 0 {
		r.header = http.Header{"Preference-Applied": {strings.Join(applied, ", ")}}
	}
	return r
}

// deltaTokenLocked returns what a delta or skip token stands for, nil when it is unknown
// or older than Options.DeltaTokenLifetime (then it is forgotten, with every other token
// past its lifetime).
func (s *Server) deltaTokenLocked(tok string) *deltaState {
	st := s.state.graph.delta[tok]
	if s.opts.DeltaTokenLifetime <= 0 {
		return st
	}
	now := s.nowLocked()
	for k, v := range s.state.graph.delta {
		if now.Sub(v.issued) > s.opts.DeltaTokenLifetime {
			delete(s.state.graph.delta, k)
		}
	}
	if st != nil && now.Sub(st.issued) > s.opts.DeltaTokenLifetime {
		return nil
	}
	return st
}

// syncStateNotFound is the answer to a delta or skip token Outlook no longer knows:
// 410 Gone with code SyncStateNotFound (ms365-protocol.md §8.7), or what
// Options.DeltaExpiredStatus and DeltaExpiredCode make it.
func (s *Server) syncStateNotFound() *graphResp {
	return gerr(s.opts.DeltaExpiredStatus, s.opts.DeltaExpiredCode,
		"The sync state generation is not found. The delta token is expired and data must be synchronized again.")
}

func pathOf(segs []string) string {
	out := make([]string, len(segs))
	for i, p := range segs {
		out[i] = url.PathEscape(p)
	}
	return strings.Join(out, "/")
}

// newRoundLocked lists the changes of folder f after baseline (-1: a first round, the
// folder's current messages only).
func (s *Server) newRoundLocked(mb *mailbox, f *folder, baseline int64, sel []string, pageSize int, changeTypes map[string]bool) *deltaRound {
	r := &deltaRound{folderID: f.id, snapshot: s.state.mail.seq, sel: sel, pageSize: pageSize, changeTypes: changeTypes}
	wants := func(ct string) bool { return changeTypes == nil || changeTypes[ct] }
	type entry struct {
		seq int64
		it  deltaItem
	}
	var entries []entry
	present := map[string]bool{}
	for _, m := range mb.messages {
		if m.folderID != f.id {
			continue
		}
		present[m.immutableID] = true
		switch {
		case baseline < 0: // a first round lists what is there
		case m.arrived > baseline && wants("created"):
		case m.changed > baseline && m.arrived <= baseline && wants("updated"):
		default:
			continue
		}
		entries = append(entries, entry{m.changed, deltaItem{immutableID: m.immutableID}})
	}
	if baseline >= 0 && wants("deleted") {
		gone := map[string]bool{}
		for i := len(mb.removals) - 1; i >= 0; i-- {
			rm := mb.removals[i]
			if rm.seq <= baseline {
				break
			}
			if rm.folderID != f.id || present[rm.immutableID] || gone[rm.immutableID] {
				continue
			}
			gone[rm.immutableID] = true
			entries = append(entries, entry{rm.seq, deltaItem{immutableID: rm.immutableID, removed: &rm}})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return int(a.seq - b.seq) })
	for _, e := range entries {
		r.items = append(r.items, e.it)
	}
	return r
}

// deltaItemJSON renders one item of a round as it is now: a message still in place, or
// @removed.
func (s *Server) deltaItemJSON(c *mailboxCall, r *deltaRound, it deltaItem) map[string]any {
	if it.removed == nil {
		if m := c.mb.messages[it.immutableID]; m != nil && m.folderID == r.folderID {
			out := s.messageJSON(c, m, r.sel)
			out["@odata.type"] = "#microsoft.graph.message"
			return out
		}
		// Deleted or moved out since the round began.
		for i := len(c.mb.removals) - 1; i >= 0; i-- {
			if c.mb.removals[i].immutableID == it.immutableID {
				rm := c.mb.removals[i]
				it.removed = &rm
				break
			}
		}
	}
	id := it.immutableID
	if !c.immutable && it.removed != nil {
		id = it.removed.restID
	}
	return map[string]any{"@odata.type": "#microsoft.graph.message", "id": id, "@removed": map[string]any{"reason": "deleted"}}
}
