package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/postroom/postroom/internal/privacy"
	"github.com/postroom/postroom/internal/store"
)

// Data protection pages, for admins: the audit log (/audit, filtered and paged, with a CSV
// export through the API's /api/v1/audit.csv) and the erasure of one customer's data
// (/privacy: a count first, then a confirmation). The rules are in internal/privacy.

func (h *handler) privacyRoutes(mux *pageMux) {
	mux.page("GET /audit", store.RoleAdmin, h.auditPage)
	mux.page("GET /privacy", store.RoleAdmin, h.privacyPage)
	mux.page("POST /privacy", store.RoleAdmin, h.privacyPreview)
	mux.page("POST /privacy/erase", store.RoleAdmin, h.privacyErase)
}

type auditPageData struct {
	Events []store.AuditEvent
	Total  int
	// Form is what was asked; Errors advice per field.
	Form   url.Values
	Errors map[string]string
	// First and Last number the events shown (1-based); Newer and Older are the links to
	// the neighbouring pages ("" when there is none); Export the CSV of the filter.
	First, Last   int
	Newer, Older  string
	Export        string
	FilterApplied bool
}

// auditPage lists the audit log, newest first, filtered and paged.
func (h *handler) auditPage(w http.ResponseWriter, r *http.Request, v viewer) {
	q, errs := privacy.ParseAuditQuery(r.URL.Query())
	d := auditPageData{Form: r.URL.Query(), Errors: errs}
	if len(errs) > 0 {
		h.render(w, r, http.StatusBadRequest, "audit", h.data(v, "Audit log", "audit", d))
		return
	}
	f := q.Filter
	var err error
	if d.Events, err = h.st.SearchAudit(r.Context(), f); err != nil {
		h.serverError(w, r, "read the audit log", err)
		return
	}
	if d.Total, err = h.st.CountAudit(r.Context(), f); err != nil {
		h.serverError(w, r, "count the audit log", err)
		return
	}
	filter := url.Values{}
	for _, k := range []string{"q", "action", "actor", "object", "from", "to"} {
		if s := r.URL.Query().Get(k); s != "" {
			filter.Set(k, s)
			d.FilterApplied = true
		}
	}
	d.Export = "/api/v1/audit.csv"
	if len(filter) > 0 {
		d.Export += "?" + filter.Encode()
	}
	page := func(offset int) string {
		p := url.Values{}
		for k, vs := range filter {
			p[k] = vs
		}
		if f.Limit != privacy.DefaultAuditPage {
			p.Set("limit", strconv.Itoa(f.Limit))
		}
		if offset > 0 {
			p.Set("offset", strconv.Itoa(offset))
		}
		if len(p) == 0 {
			return "/audit"
		}
		return "/audit?" + p.Encode()
	}
	if len(d.Events) > 0 {
		d.First, d.Last = f.Offset+1, f.Offset+len(d.Events)
	}
	if f.Offset > 0 {
		d.Newer = page(max(f.Offset-f.Limit, 0))
	}
	if f.Offset+len(d.Events) < d.Total {
		d.Older = page(f.Offset + f.Limit)
	}
	h.render(w, r, http.StatusOK, "audit", h.data(v, "Audit log", "audit", d))
}

type privacyPageData struct {
	Address string
	Error   string
	// Preview is what an erasure of Address would remove (shown with the confirm button).
	Preview *store.ErasureCounts
	// Erased is what the erasure removed; Hash names the address in the audit log.
	Erased *store.ErasureCounts
	Hash   string
}

// privacyPage asks for an address.
func (h *handler) privacyPage(w http.ResponseWriter, r *http.Request, v viewer) {
	h.render(w, r, http.StatusOK, "privacy", h.data(v, "Privacy", "privacy", privacyPageData{}))
}

// privacyPreview shows what erasing the address would remove, with the confirm button.
// The address travels in the form body, never in a URL (no history, no access log).
func (h *handler) privacyPreview(w http.ResponseWriter, r *http.Request, v viewer) {
	d := privacyPageData{Address: r.PostForm.Get("address")}
	c, err := privacy.ErasurePreview(r.Context(), h.st, d.Address)
	if errors.Is(err, privacy.ErrBadAddress) {
		d.Error = "Enter one email address, e.g. kim@example.org (no name, no angle brackets)."
		h.render(w, r, http.StatusBadRequest, "privacy", h.data(v, "Privacy", "privacy", d))
		return
	}
	if err != nil {
		h.serverError(w, r, "count the customer's data", err)
		return
	}
	d.Preview = &c
	h.render(w, r, http.StatusOK, "privacy", h.data(v, "Privacy", "privacy", d))
}

// privacyErase erases the address's data when the confirmation page sent confirm=yes.
func (h *handler) privacyErase(w http.ResponseWriter, r *http.Request, v viewer) {
	addr := r.PostForm.Get("address")
	if r.PostForm.Get(confirmField) != confirmYes {
		h.privacyPreview(w, r, v)
		return
	}
	d := privacyPageData{Address: addr}
	c, err := privacy.Erase(r.Context(), h.st, v.User.Username, addr)
	if errors.Is(err, privacy.ErrBadAddress) {
		d.Error = "Enter one email address, e.g. kim@example.org (no name, no angle brackets)."
		h.render(w, r, http.StatusBadRequest, "privacy", h.data(v, "Privacy", "privacy", d))
		return
	}
	if err != nil {
		h.serverError(w, r, "erase the customer's data", err)
		return
	}
	norm, _ := privacy.NormaliseAddress(addr)
	d.Erased, d.Hash, d.Address = &c, privacy.AddressHash(norm), ""
	h.render(w, r, http.StatusOK, "privacy", h.data(v, "Privacy", "privacy", d))
}
