package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/privacy"
	"github.com/postroom/postroom/internal/store"
)

// auditEventJSON is one audit event.
type auditEventJSON struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Object string    `json:"object"`
	Old    string    `json:"old"`
	New    string    `json:"new"`
}

// auditQuery reads the audit filter of the query string, answering 400 with advice for a
// bad one.
func auditQuery(w http.ResponseWriter, r *http.Request) (store.AuditFilter, bool) {
	q, errs := privacy.ParseAuditQuery(r.URL.Query())
	if len(errs) > 0 {
		writeInvalid(w, "the audit filter has errors", errs)
		return store.AuditFilter{}, false
	}
	return q.Filter, true
}

// listAudit lists the audit events matching the filter, newest first, with their total.
func (s *server) listAudit(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	f, ok := auditQuery(w, r)
	if !ok {
		return
	}
	events, err := s.st.SearchAudit(r.Context(), f)
	if err != nil {
		s.internalError(w, r, "read the audit log", err)
		return
	}
	total, err := s.st.CountAudit(r.Context(), f)
	if err != nil {
		s.internalError(w, r, "count the audit log", err)
		return
	}
	out := make([]auditEventJSON, 0, len(events))
	for _, e := range events {
		out = append(out, auditEventJSON{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Object: e.Object, Old: e.Old, New: e.New})
	}
	writeJSON(w, http.StatusOK, struct {
		Events []auditEventJSON `json:"events"`
		Total  int              `json:"total"`
		Limit  int              `json:"limit"`
		Offset int              `json:"offset"`
	}{out, total, f.Limit, f.Offset})
}

// auditCSV exports the audit events matching the filter (limit and offset ignored) as CSV.
func (s *server) auditCSV(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	f, ok := auditQuery(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="postroom-audit.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := privacy.WriteAuditCSV(r.Context(), s.st, f, w); err != nil {
		// The header is sent: the export ends short, and the log says why.
		s.logger.ErrorContext(r.Context(), "audit export failed", "error", err)
	}
}

// erasure counts (dry run) or erases one customer's data.
func (s *server) erasure(w http.ResponseWriter, r *http.Request, u store.User, _ store.Session) {
	var body struct {
		Address string `json:"address"`
		Confirm bool   `json:"confirm"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	addr, err := privacy.NormaliseAddress(body.Address)
	if err != nil {
		writeFieldErrors(w, map[string]string{"address": err.Error()})
		return
	}
	var c store.ErasureCounts
	if body.Confirm {
		c, err = privacy.Erase(r.Context(), s.st, u.Username, addr)
	} else {
		c, err = privacy.ErasurePreview(r.Context(), s.st, addr)
	}
	if err != nil {
		if errors.Is(err, privacy.ErrBadAddress) {
			writeFieldErrors(w, map[string]string{"address": err.Error()})
			return
		}
		s.internalError(w, r, fmt.Sprintf("erase (confirm %v)", body.Confirm), err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		DryRun        bool                `json:"dry_run"`
		AddressSHA256 string              `json:"address_sha256"`
		Counts        store.ErasureCounts `json:"counts"`
	}{!body.Confirm, privacy.AddressHash(addr), c})
}
