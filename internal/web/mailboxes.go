package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// The Mailboxes page (the seed's "Email Mailboxes"): a table of every mailbox with its live
// status, filtered by direction and a search, and a detail pane for the selected row.
// Supervisors see it read-only; the actions (mailboxactions.go), the create and edit form
// (mailboxform.go), the delete confirmation (mailboxdelete.go), the From addresses
// (fromaddresses.go) and the queues (queues.go) are for administrators.

// auditShown is how many audit events of the selected mailbox the detail pane lists: the
// recent history an administrator looks at before changing something.
const auditShown = 10

// mailboxRoutes registers the mailbox and queue administration pages.
func (h *handler) mailboxRoutes(mux *pageMux) {
	sup, adm := store.RoleSupervisor, store.RoleAdmin
	mux.page("GET /mailboxes", sup, h.mailboxList)
	mux.page("GET /mailboxes/new", adm, h.mailboxNew)
	mux.page("POST /mailboxes", adm, h.mailboxCreate)
	mux.page("POST /mailboxes/test", adm, h.mailboxTestNew)
	mux.page("GET /mailboxes/{id}/edit", adm, h.mailboxEdit)
	mux.page("POST /mailboxes/{id}", adm, h.mailboxUpdate)
	mux.page("POST /mailboxes/{id}/test", adm, h.mailboxTest)
	mux.page("GET /mailboxes/{id}/delete", adm, h.mailboxDeleteConfirm)
	mux.page("POST /mailboxes/{id}/delete", adm, h.mailboxDelete)
	mux.page("POST /mailboxes/{id}/enable", adm, h.mailboxEnable)
	mux.page("POST /mailboxes/{id}/disable", adm, h.mailboxDisable)
	mux.page("POST /mailboxes/{id}/copy", adm, h.mailboxCopy)
	mux.page("POST /mailboxes/{id}/assign", adm, h.mailboxAssign)
	mux.page("POST /mailboxes/enable-all", adm, h.mailboxSetAll(true))
	mux.page("POST /mailboxes/disable-all", adm, h.mailboxSetAll(false))
	mux.page("POST /mailboxes/bulk", adm, h.mailboxBulk)
	mux.page("GET /mailboxes/{id}/from-addresses", sup, h.fromAddresses)
	mux.page("POST /mailboxes/{id}/from-addresses", adm, h.fromAddressAdd)
	mux.page("POST /mailboxes/{id}/from-addresses/{fid}/delete", adm, h.fromAddressDelete)
	mux.page("GET /queues", sup, h.queueList)
	mux.page("POST /queues", adm, h.queueCreate)
	mux.page("POST /queues/{id}/enable", adm, h.queueSetEnabled(true))
	mux.page("POST /queues/{id}/disable", adm, h.queueSetEnabled(false))
}

// listView is where a mailbox page came from: the filter, the search and the selected
// row. Action forms carry it in hidden fields so that the list looks the same afterwards.
type listView struct {
	Show     string // "", store.Inbound or store.Outbound
	Query    string
	Selected int64
}

// viewFrom reads the list view from the query string (GET) or the form (POST).
func viewFrom(r *http.Request) listView {
	get := r.URL.Query().Get
	if r.Method == http.MethodPost {
		get = r.PostForm.Get
	}
	lv := listView{Query: strings.TrimSpace(get("q"))}
	if s := get("show"); s == store.Inbound || s == store.Outbound {
		lv.Show = s
	}
	lv.Selected, _ = strconv.ParseInt(get("selected"), 10, 64)
	return lv
}

// URL is the list page for the view, with notice (a key of notices) when not empty.
func (lv listView) URL(notice string) string {
	q := url.Values{}
	if lv.Show != "" {
		q.Set("show", lv.Show)
	}
	if lv.Query != "" {
		q.Set("q", lv.Query)
	}
	if lv.Selected != 0 {
		q.Set("selected", strconv.FormatInt(lv.Selected, 10))
	}
	if notice != "" {
		q.Set("notice", notice)
	}
	if len(q) == 0 {
		return "/mailboxes"
	}
	return "/mailboxes?" + q.Encode()
}

// with returns the view with another selected mailbox.
func (lv listView) with(id int64) listView { lv.Selected = id; return lv }

// ShowURL is the list filtered by direction show, keeping the search and selection.
func (lv listView) ShowURL(show string) string { lv.Show = show; return lv.URL("") }

// ClearURL is the list without the search.
func (lv listView) ClearURL() string { lv.Query = ""; return lv.URL("") }

// SelectURL is the list with mailbox id selected.
func (lv listView) SelectURL(id int64) string { return lv.with(id).URL("") }

// noticeTested marks the list page a connection test redirected to (its report waits in
// the flashes).
const noticeTested = "tested"

// notices are the messages shown after a successful action (the redirect names one by its
// key, so that no free text travels in the URL).
var notices = map[string]string{
	"created":      "Mailbox created. It is disabled: assign it to a queue or enable it when the connection test passes.",
	"saved":        "Mailbox saved.",
	"deleted":      "Mailbox deleted. Its messages and work items stay.",
	"enabled":      "Mailbox enabled.",
	"disabled":     "Mailbox disabled.",
	"copied":       "Mailbox copied. The copy is disabled and has no password yet: edit it to set one.",
	"assigned":     "Queue assignment saved.",
	"all-enabled":  "Mailboxes enabled.",
	"all-disabled": "Mailboxes disabled.",
	noticeTested:   "Connection test done: its report is in the mailbox's details.",
	// "signed-in" is built from the mailbox's account (signedInNotice).
}

// mailboxRow is one row of the table.
type mailboxRow struct {
	store.Mailbox
	Type     string // "Inbound", "Outbound"
	Client   string // "IMAP", "POP3", "SMTP", "Graph"
	Live     mailbox.Status
	Queue    string
	Selected bool
	// NeedsSignIn: a delegated mailbox nobody has signed in to, or whose sign-in died.
	NeedsSignIn bool
	// Expiry is the client secret's expiry as recorded (zero At: unknown).
	Expiry mailbox.Expiry
	// SignIn is when a delegated sign-in lapses if unused (zero At: not delegated).
	SignIn mailbox.Expiry
	// Holder is the name of the node whose ingest reads the mailbox (the holder of its
	// unexpired lease, internal/cluster; "" for none).
	Holder string
}

// ExpiryText says when the client secret expires, relative to now: "expires in 9 days",
// "expired 3 days ago".
func (r mailboxRow) ExpiryText() string {
	e := r.Expiry
	switch {
	case e.At.IsZero():
		return ""
	case e.Expired && e.Left > -24*time.Hour:
		return "expired today"
	case e.Expired && e.Left > -48*time.Hour:
		return "expired 1 day ago"
	case e.Expired:
		return fmt.Sprintf("expired %d days ago", int(-e.Left/(24*time.Hour)))
	case e.DaysLeft == 0:
		return "expires today"
	case e.DaysLeft == 1:
		return "expires in 1 day"
	}
	return fmt.Sprintf("expires in %d days", e.DaysLeft)
}

// ExpiryClass is the style of ExpiryText: a warning within mailbox.ExpiryWarning, an
// error once expired.
func (r mailboxRow) ExpiryClass() string {
	switch {
	case r.Expiry.Expired:
		return "expiry-expired"
	case r.Expiry.Warn:
		return "expiry-warn"
	}
	return "expiry-ok"
}

// SignInButton is the label of the mailbox's sign-in button.
func (r mailboxRow) SignInButton() string { return signInButton(r.Mailbox) }

// CloudLabel names the mailbox's Microsoft cloud or its provider's token URL.
func (r mailboxRow) CloudLabel() string {
	o := r.OAuth
	if o.Provider == credential.ProviderCustom {
		return "other provider, token URL " + o.TokenURL
	}
	if o.Provider == credential.ProviderGoogle {
		return "Google Workspace"
	}
	if o.Cloud == credential.CloudCustom {
		return "authority " + o.AuthorityURL
	}
	if c, ok := credential.CloudByName(o.Cloud); ok {
		return c.Label
	}
	return o.Cloud
}

// GraphHost is the Graph host the mailbox uses.
func (r mailboxRow) GraphHost() string {
	if r.GraphURL != "" {
		return r.GraphURL
	}
	if c, ok := credential.CloudByName(r.OAuth.Cloud); ok {
		return c.GraphURL + " (default)"
	}
	return ""
}

// GraphHostName is the host of GraphHost, for the table.
func (r mailboxRow) GraphHostName() string {
	raw := r.GraphURL
	if raw == "" {
		if c, ok := credential.CloudByName(r.OAuth.Cloud); ok {
			raw = c.GraphURL
		}
	}
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return ""
}

// OAuthOn reports whether the mailbox signs in with OAuth 2.0.
func (r mailboxRow) OAuthOn() bool { return r.Auth != "" && r.Auth != store.AuthPassword }

// mailboxDetail is the detail pane of the selected mailbox.
type mailboxDetail struct {
	mailboxRow
	From      []store.FromAddress
	Audit     []store.AuditEvent
	CopyName  string
	CopyError string
	Report    *diag.Report
}

type mailboxesData struct {
	View       listView
	Rows       []mailboxRow
	Total      int
	Detail     *mailboxDetail
	Queues     []store.Queue
	Notice     string
	Error      string
	Configured bool
}

// ShowLabel names the direction filter for the "Enable all" buttons.
func (d mailboxesData) ShowLabel() string {
	if d.View.Show == "" {
		return ""
	}
	return " " + d.View.Show
}

func (h *handler) mailboxList(w http.ResponseWriter, r *http.Request, v viewer) {
	lv := viewFrom(r)
	notice := r.URL.Query().Get("notice")
	d := mailboxesData{Notice: notices[notice]}
	if notice == noticeTested && lv.Selected != 0 {
		// The report the test left (mailboxTest); gone after flashLifetime.
		if rep, ok := h.flash.peek(flashKey{session: v.Session.TokenHash, kind: flashTestReport, id: lv.Selected}); ok {
			d.Detail = &mailboxDetail{Report: rep.(*diag.Report)}
		} else {
			d.Notice = "The connection test's report has expired: press Test to run it again."
		}
	}
	h.renderMailboxes(w, r, v, http.StatusOK, lv, d)
}

// renderMailboxes fills d with the table for lv and renders the page.
func (h *handler) renderMailboxes(w http.ResponseWriter, r *http.Request, v viewer, status int, lv listView, d mailboxesData) {
	ctx := r.Context()
	mbs, err := h.st.ListMailboxes(ctx)
	if err != nil {
		h.serverError(w, r, "list the mailboxes", err)
		return
	}
	var formTargets []string
	queues, err := h.st.ListQueues(ctx)
	if err != nil {
		h.serverError(w, r, "list the queues", err)
		return
	}
	queueNames := map[int64]string{}
	for _, q := range queues {
		queueNames[q.ID] = q.Name
	}
	holders, err := h.holders(ctx)
	if err != nil {
		h.serverError(w, r, "read the mailboxes' leases", err)
		return
	}
	sort.SliceStable(mbs, func(i, j int) bool { return strings.ToLower(mbs[i].Name) < strings.ToLower(mbs[j].Name) })
	d.View, d.Queues, d.Total, d.Configured = lv, queues, len(mbs), h.mailboxes != nil
	for _, m := range mbs {
		if !matches(m, lv) {
			continue
		}
		row, err := h.row(ctx, m, queueNames)
		if err != nil {
			h.serverError(w, r, "read the mailbox status", err)
			return
		}
		row.Selected = m.ID == lv.Selected
		row.Holder = holders[m.ID]
		d.Rows = append(d.Rows, row)
	}
	if lv.Selected != 0 {
		// The selected mailbox is shown even when the filter hides its row, so that an
		// action's result stays in view.
		for _, m := range mbs {
			if m.ID != lv.Selected {
				continue
			}
			row, err := h.row(ctx, m, queueNames)
			if err != nil {
				h.serverError(w, r, "read the mailbox status", err)
				return
			}
			row.Holder = holders[m.ID]
			det := mailboxDetail{mailboxRow: row}
			if d.Detail != nil { // an action's state for the pane (copy error, test report)
				det.CopyName, det.CopyError, det.Report = d.Detail.CopyName, d.Detail.CopyError, d.Detail.Report
			}
			if m.Direction == store.Outbound {
				if det.From, err = h.st.ListFromAddresses(ctx, m.ID); err != nil {
					h.serverError(w, r, "list the From addresses", err)
					return
				}
			}
			if det.Audit, err = h.st.ListAuditFor(ctx, mailboxObject(m.ID), auditShown); err != nil {
				h.serverError(w, r, "read the mailbox history", err)
				return
			}
			d.Detail = &det
			if o := signInOrigin(m); o != "" {
				formTargets = append(formTargets, o)
			}
			if r.URL.Query().Get("notice") == "signed-in" {
				d.Notice = signedInNotice(m)
			}
		}
		if d.Detail != nil && d.Detail.ID == 0 {
			d.Detail = nil
		}
	}
	pd := h.data(v, "Mailboxes", "mailboxes", d)
	pd.Wide = true
	if pd.CanAdmin {
		pd.FormTargets = formTargets
	}
	h.render(w, r, status, "mailboxes", pd)
}

// mailboxObject is the audit object of a mailbox, as internal/mailbox writes it.
func mailboxObject(id int64) string { return fmt.Sprintf("mailbox:%d", id) }

// matches reports whether m passes the direction filter and the search (name, login,
// address and host, case-insensitive).
func matches(m store.Mailbox, lv listView) bool {
	if lv.Show != "" && m.Direction != lv.Show {
		return false
	}
	if lv.Query == "" {
		return true
	}
	q := strings.ToLower(lv.Query)
	for _, s := range []string{m.Name, m.Login, m.Address, m.Host} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// row builds the table row of m with its live status.
func (h *handler) row(ctx context.Context, m store.Mailbox, queueNames map[int64]string) (mailboxRow, error) {
	row := mailboxRow{Mailbox: m, Type: directionLabel(m.Direction), Client: protocolLabel(m.Protocol), Queue: queueNames[m.QueueID],
		NeedsSignIn: credential.SignInNeeded(m), Expiry: mailbox.SecretExpiry(m, h.now()),
		SignIn: mailbox.SignInExpiry(m, h.now())}
	if h.mailboxes == nil {
		row.Live = mailbox.Status{State: m.Status, Message: m.StatusMessage, At: m.StatusAt, LastOK: m.LastOKAt}
		return row, nil
	}
	st, err := h.mailboxes.Status(ctx, m)
	if err != nil {
		return row, fmt.Errorf("status of mailbox %d: %w", m.ID, err)
	}
	row.Live = st
	return row, nil
}

// signedInNotice is the notice after a delegated sign-in of m.
func signedInNotice(m store.Mailbox) string {
	if m.OAuth.Account == "" {
		return "Signed in. The provider did not name the account. postroom keeps the sign-in and renews it by itself."
	}
	n := "Signed in as " + m.OAuth.Account + "."
	if m.Address != "" && !strings.EqualFold(m.Address, m.OAuth.Account) {
		n += " This account opens " + m.Address + ": it needs Full Access to that mailbox."
	}
	return n + " postroom keeps the sign-in and renews it by itself."
}

// protocolLabel names a protocol for the Client Type column.
func protocolLabel(p string) string {
	if p == mailbox.Graph {
		return "Graph"
	}
	if p == mailbox.Gmail {
		return "Gmail API"
	}
	return strings.ToUpper(p)
}

// authLabel names a sign-in method for people; certificate tells an app with a
// certificate from one with a secret.
func authLabel(m store.Mailbox) string {
	switch m.Auth {
	case store.AuthOAuthApp:
		if m.OAuth.Provider == credential.ProviderGoogle {
			return "Google service account with domain-wide delegation (no user)"
		}
		if m.CertificateSet && !m.ClientSecretSet {
			return "app registration with a certificate (no user)"
		}
		return "app registration with a client secret (no user)"
	case store.AuthOAuthDelegated:
		return "a person signs in (delegated)"
	case store.AuthOAuthROPC:
		return "login and password for a token (ROPC)"
	}
	return "password"
}

func directionLabel(dir string) string {
	switch dir {
	case store.Inbound:
		return "Inbound"
	case store.Outbound:
		return "Outbound"
	}
	return dir
}

// loadMailbox reads mailbox {id}; on failure it has written the error page.
func (h *handler) loadMailbox(w http.ResponseWriter, r *http.Request) (store.Mailbox, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.mailboxNotFound(w, r)
		return store.Mailbox{}, false
	}
	m, err := h.st.Mailbox(r.Context(), id)
	if store.IsNotFound(err) {
		h.mailboxNotFound(w, r)
		return store.Mailbox{}, false
	}
	if err != nil {
		h.serverError(w, r, "read the mailbox", err)
		return store.Mailbox{}, false
	}
	return m, true
}

func (h *handler) mailboxNotFound(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, http.StatusNotFound, "Mailbox not found",
		"There is no mailbox with this id; it may have been deleted. Go back to the Mailboxes page.")
}

// needService writes an error page when no mailbox service is configured.
func (h *handler) needService(w http.ResponseWriter, r *http.Request) bool {
	if h.mailboxes != nil {
		return true
	}
	h.errorPage(w, r, http.StatusServiceUnavailable, "Mailbox administration is not available",
		"This server was started without mailbox administration. Use the command line, or ask the operator.")
	return false
}

// securityLabel names a security setting for people.
func securityLabel(s string) string {
	switch s {
	case mailbox.SecurityTLS:
		return "TLS"
	case mailbox.SecurityStartTLS:
		return "STARTTLS"
	case mailbox.SecurityNone:
		return "none (loopback only)"
	}
	return s
}

// afterActionLabel says what happens at the source after a message is stored.
func afterActionLabel(action, protocol string) string {
	switch action {
	case store.AfterMarkRead:
		return "mark as read"
	case store.AfterMove:
		return "move to folder"
	case store.AfterDelete:
		return "delete from the server"
	case store.AfterKeep:
		return "leave on the server"
	case "":
		if protocol == mailbox.POP3 {
			return "delete from the server (default)"
		}
		return "mark as read (default)"
	}
	return action
}

// formatSeconds shows a poll interval: "60 s", "5 min".
func formatSeconds(d time.Duration) string {
	if d == 0 {
		return "60 s (default)"
	}
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%d min", int(d/time.Minute))
	}
	return fmt.Sprintf("%d s", int(d/time.Second))
}

// formatAgo says how long ago t was, "never" for the zero time.
func formatAgo(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	if s := formatAge(t); s != "just now" {
		return s + " ago"
	}
	return "just now"
}
