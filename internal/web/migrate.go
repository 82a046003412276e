package web

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// The "Migrate mailboxes to OAuth 2.0" page: the seed's migration from passwords to an app
// registration, which its product asks customers to open a support case for, done
// self-service. The administrator enters the app registration once, tests it on one
// mailbox ("Test": mailbox.Service.TestInput, nothing saved), and migrates the ticked
// mailboxes in one step (mailbox.Service.Migrate: each is saved with the new sign-in and
// tested; one whose test fails is put back as it was). "Migrate ticked" runs the test on
// the test mailbox first and changes nothing when it fails, so the settings are checked
// before any mailbox is touched. The client secret and the certificate are write-only:
// after every answer the fields are empty and a note asks to paste them again.

// Form field names of the page besides the mailbox form's OAuth fields (oauth_cloud,
// oauth_authority_url, graph_url, oauth_tenant, oauth_client_id, client_secret,
// client_certificate, oauth_secret_expires_at), which keep their names and labels.
const (
	migrateFieldIDs     = "id"      // the ticked mailboxes (several)
	migrateFieldTestID  = "test_id" // the mailbox the settings are tested on
	migrateFieldToGraph = "to_graph"
)

// migrateFields are the page's fields in page order, for the error summary.
var migrateFields = []string{
	"oauth_tenant", "oauth_client_id", "oauth_cloud", "oauth_authority_url", "client_secret",
	"oauth_secret_expires_at", "client_certificate", "graph_url", migrateFieldIDs, migrateFieldTestID,
}

// migrateLabels are the labels of the page's own fields.
var migrateLabels = map[string]string{
	migrateFieldIDs: "Mailboxes to migrate", migrateFieldTestID: "Test mailbox", migrateFieldToGraph: "Also move to Microsoft Graph",
}

func migrateLabel(key string) string {
	if l, ok := migrateLabels[key]; ok {
		return l
	}
	return fieldLabel(key)
}

// exchangeOnlineHosts are the IMAP, POP3 and SMTP hosts of Microsoft's clouds: a password
// mailbox at one of them is preselected for the migration. outlook.office.com is the older
// name of the global cloud's host, still in many set-ups.
func exchangeOnlineHosts() []string {
	hosts := []string{"outlook.office.com"}
	for _, c := range credential.Clouds() {
		hosts = append(hosts, c.IMAPHost, c.SMTPHost)
	}
	return hosts
}

// microsoftHosted reports whether m connects to Exchange Online by its host.
func microsoftHosted(m store.Mailbox) bool {
	host := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(m.Host)), ".")
	return host != "" && slices.Contains(exchangeOnlineHosts(), host)
}

// migratable reports whether m signs in with a password (or the deprecated ROPC grant,
// which is a password too) and can move to an app registration.
func migratable(m store.Mailbox) bool {
	return m.Auth == "" || m.Auth == store.AuthPassword || m.Auth == store.AuthOAuthROPC
}

// migrateRoutes registers the page (administrators only: it changes mailboxes).
func (h *handler) migrateRoutes(mux *pageMux) {
	adm := store.RoleAdmin
	mux.page("GET /mailboxes/migrate", adm, h.migratePage)
	mux.page("POST /mailboxes/migrate", adm, h.migrateRun)
	mux.page("POST /mailboxes/migrate/test", adm, h.migrateTest)
}

// migrateValues are the page's fields as typed (the secret and the certificate are never
// among them).
type migrateValues struct {
	Cloud, AuthorityURL, GraphURL, Tenant, ClientID, SecretExpires string
	ToGraph                                                        bool
	// Ticked are the mailboxes ticked for the migration; TestID the test mailbox.
	Ticked map[int64]bool
	TestID int64
}

// migrateRow is one password mailbox in the page's table.
type migrateRow struct {
	store.Mailbox
	Type, Client string
	// Microsoft: the host is Exchange Online's.
	Microsoft bool
	Ticked    bool
	Test      bool
}

// SignIn names the mailbox's sign-in now.
func (r migrateRow) SignIn() string {
	if r.Auth == store.AuthOAuthROPC {
		return "login and password for a token (ROPC, deprecated)"
	}
	return "password"
}

// migrateResult is one mailbox's outcome in the result table.
type migrateResult struct {
	mailbox.MigrationResult
	// Failed is the step of the connection test that failed (rolled back).
	Failed *diag.Step
}

// Outcome is the result column's word.
func (r migrateResult) Outcome() string {
	switch {
	case r.Migrated:
		return "migrated"
	case r.RolledBack:
		return "rolled back"
	}
	return "not changed"
}

type migrateData struct {
	V    migrateValues
	Rows []migrateRow
	// Errors are keyed by field name ("" for the page); Summary lists them in page order.
	Errors  map[string]string
	Summary []string
	// Report is the test of the new sign-in on the test mailbox TestName; Gate is true when
	// it ran before a migration and failed, so that nothing was migrated.
	Report   *diag.Report
	TestName string
	Gate     bool
	// Prechecks is the Microsoft 365 walk-through for the test mailbox as it would be
	// after the migration, filled in with the ids on the page.
	Prechecks   []diag.Precheck
	PrecheckFor string
	// TypedClientSecret and TypedCertificate: the form comes back after one was pasted, and
	// it must be pasted again (it is never sent back to the page).
	TypedClientSecret, TypedCertificate bool
	// Results of a migration, and their counts.
	Results              []migrateResult
	Migrated, RolledBack int
	NotChanged           int
	// Stopped says that the migration stopped on an internal error (logged).
	Stopped bool
	Clouds  []choice
}

// Ran reports whether the page shows a migration's results.
func (d migrateData) Ran() bool { return len(d.Results) > 0 || d.Stopped }

func (h *handler) migratePage(w http.ResponseWriter, r *http.Request, v viewer) {
	if !h.needService(w, r) {
		return
	}
	d := migrateData{V: migrateValues{Cloud: credential.CloudGlobal}}
	rows, ok := h.migrateRows(w, r)
	if !ok {
		return
	}
	// Preselected: the mailboxes at Exchange Online's hosts; the test mailbox is the first
	// of them (or the first mailbox).
	d.V.Ticked = map[int64]bool{}
	for _, row := range rows {
		if row.Microsoft {
			d.V.Ticked[row.ID] = true
			if d.V.TestID == 0 {
				d.V.TestID = row.ID
			}
		}
	}
	if d.V.TestID == 0 && len(rows) > 0 {
		d.V.TestID = rows[0].ID
	}
	h.renderMigrate(w, r, v, http.StatusOK, d, rows)
}

// migrateTest tests the new sign-in on the test mailbox; nothing is saved.
func (h *handler) migrateTest(w http.ResponseWriter, r *http.Request, v viewer) {
	if d, rows, _, ok := h.migrateGate(w, r, v, false); ok {
		h.renderMigrate(w, r, v, http.StatusOK, d, rows)
	}
}

// migrateGate reads and checks the posted page and tests the new sign-in on the test
// mailbox. When ok is false it has answered already (errors, or the test failed before
// a migration, shown as the gate); otherwise d holds the passing or failing report.
func (h *handler) migrateGate(w http.ResponseWriter, r *http.Request, v viewer, migrating bool) (d migrateData, rows []migrateRow, mig mailbox.Migration, ok bool) {
	if !h.needService(w, r) {
		return d, nil, mig, false
	}
	if rows, ok = h.migrateRows(w, r); !ok {
		return d, nil, mig, false
	}
	d, mig = readMigrateForm(r)
	test, errs := checkMigrateForm(d, rows, migrating)
	if len(errs) > 0 {
		d.Errors = errs
		h.renderMigrate(w, r, v, http.StatusBadRequest, d, rows)
		return d, rows, mig, false
	}
	if !h.runMigrateTest(w, r, &d, test, mig) {
		return d, rows, mig, false
	}
	if len(d.Errors) > 0 {
		h.renderMigrate(w, r, v, http.StatusBadRequest, d, rows)
		return d, rows, mig, false
	}
	if migrating && !d.Report.OK {
		d.Gate = true
		h.renderMigrate(w, r, v, http.StatusOK, d, rows)
		return d, rows, mig, false
	}
	return d, rows, mig, true
}

// migrateRun migrates the ticked mailboxes, after the test mailbox passed the test.
func (h *handler) migrateRun(w http.ResponseWriter, r *http.Request, v viewer) {
	d, rows, mig, ok := h.migrateGate(w, r, v, true)
	if !ok {
		return
	}
	// The table's order, so the result table reads like the list that was ticked.
	var ids []int64
	for _, row := range rows {
		if d.V.Ticked[row.ID] {
			ids = append(ids, row.ID)
		}
	}
	results, err := h.mailboxes.Migrate(r.Context(), v.User.Username, ids, mig)
	status := http.StatusOK
	if err != nil {
		// Mailboxes handled so far are listed; the rest were not changed.
		h.logger.ErrorContext(r.Context(), "migrate mailboxes to OAuth", slog.Int("handled", len(results)), slog.Int("ticked", len(ids)), slog.Any("error", err))
		d.Stopped, status = true, http.StatusInternalServerError
	}
	for _, res := range results {
		mr := migrateResult{MigrationResult: res}
		switch {
		case res.Migrated:
			d.Migrated++
		case res.RolledBack:
			d.RolledBack++
			for i, st := range res.Report.Steps {
				if !st.OK {
					mr.Failed = &res.Report.Steps[i]
					break
				}
			}
		default:
			d.NotChanged++
		}
		d.Results = append(d.Results, mr)
	}
	// The test report was for the gate; the results carry each mailbox's own.
	d.Report, d.TestName = nil, ""
	// The list now: migrated mailboxes have left it.
	rows, ok = h.migrateRows(w, r)
	if !ok {
		return
	}
	h.renderMigrate(w, r, v, status, d, rows)
}

// runMigrateTest runs the connection test of mig on the test mailbox into d (Report and
// TestName, or field errors for settings that break a rule). It returns false after
// writing an error page.
func (h *handler) runMigrateTest(w http.ResponseWriter, r *http.Request, d *migrateData, test store.Mailbox, mig mailbox.Migration) bool {
	rep, err := h.mailboxes.TestInput(r.Context(), test.ID, mig.Input(test))
	var ve *mailbox.ValidationError
	switch {
	case errors.As(err, &ve):
		d.Errors = migrateValidationErrors(ve, test)
		return true
	case store.IsNotFound(err):
		d.Errors = map[string]string{migrateFieldTestID: "the test mailbox no longer exists: choose another one"}
		return true
	case err != nil:
		h.serverError(w, r, "test the new sign-in", err)
		return false
	}
	d.Report, d.TestName = &rep, test.Name
	return true
}

// migrateValidationErrors places the errors of the settings for test: the page's fields
// next to them, the others (rules of the mailbox itself, such as Graph needing an email
// address) in the summary, named after the mailbox.
func migrateValidationErrors(ve *mailbox.ValidationError, test store.Mailbox) map[string]string {
	errs := map[string]string{}
	for k, msg := range ve.Fields {
		if slices.Contains(migrateFields, k) {
			errs[k] = msg
			continue
		}
		errs[""] = strings.TrimSpace(errs[""] + " " + sentence(test.Name+": "+fieldLabel(k)+": "+msg))
	}
	return errs
}

// readMigrateForm reads the posted page into d (values as typed) and the migration.
// A date that does not parse is left for checkMigrateForm.
func readMigrateForm(r *http.Request) (migrateData, mailbox.Migration) {
	f := r.PostForm
	get := func(k string) string { return strings.TrimSpace(f.Get(k)) }
	d := migrateData{V: migrateValues{
		Cloud: get("oauth_cloud"), AuthorityURL: get("oauth_authority_url"), GraphURL: get("graph_url"),
		Tenant: get("oauth_tenant"), ClientID: get("oauth_client_id"), SecretExpires: get("oauth_secret_expires_at"),
		ToGraph: f.Get(migrateFieldToGraph) != "", Ticked: map[int64]bool{},
	}}
	for _, s := range f[migrateFieldIDs] {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
			d.V.Ticked[id] = true
		}
	}
	d.V.TestID, _ = strconv.ParseInt(get(migrateFieldTestID), 10, 64)
	d.TypedClientSecret = strings.TrimSpace(f.Get("client_secret")) != ""
	d.TypedCertificate = strings.TrimSpace(f.Get("client_certificate")) != ""
	mig := mailbox.Migration{
		Auth: store.AuthOAuthApp, GraphURL: d.V.GraphURL, ToGraph: d.V.ToGraph,
		OAuth: store.OAuth{Provider: credential.ProviderMicrosoft, Cloud: d.V.Cloud, AuthorityURL: d.V.AuthorityURL,
			Tenant: d.V.Tenant, ClientID: d.V.ClientID},
		ClientSecret: formSecret(f.Get("client_secret")),
		Certificate:  formSecret(f.Get("client_certificate")),
	}
	if t, err := time.Parse(time.DateOnly, d.V.SecretExpires); err == nil {
		mig.OAuth.SecretExpiresAt = t
	}
	return d, mig
}

// checkMigrateForm checks what the page itself asks for (the rules of the settings are
// internal/mailbox's, applied by the test): a test mailbox from the list, a secret or a
// certificate pasted (they are write-only, so every round needs them), a date that
// parses, and for a migration at least one mailbox ticked, each still in the list. It
// returns the test mailbox.
func checkMigrateForm(d migrateData, rows []migrateRow, migrating bool) (store.Mailbox, map[string]string) {
	errs := map[string]string{}
	var test store.Mailbox
	byID := map[int64]store.Mailbox{}
	for _, row := range rows {
		byID[row.ID] = row.Mailbox
	}
	if m, ok := byID[d.V.TestID]; ok {
		test = m
	} else {
		errs[migrateFieldTestID] = "choose the mailbox to test the new sign-in on, in the “Test with” column"
	}
	if !d.TypedClientSecret && !d.TypedCertificate {
		errs["client_secret"] = "paste the app's client secret (App registrations > Certificates & secrets: the secret's Value), or its certificate below"
	}
	if d.V.SecretExpires != "" {
		if _, err := time.Parse(time.DateOnly, d.V.SecretExpires); err != nil {
			errs["oauth_secret_expires_at"] = "enter the date as YYYY-MM-DD, like 2027-05-31 (App registrations > Certificates & secrets shows it), or leave it empty"
		}
	}
	if migrating {
		var gone int
		for id := range d.V.Ticked {
			if _, ok := byID[id]; !ok {
				gone++
			}
		}
		switch {
		case len(d.V.Ticked) == 0:
			errs[migrateFieldIDs] = "tick the mailboxes to migrate in the first column"
		case gone == 1:
			errs[migrateFieldIDs] = "one ticked mailbox was deleted or already signs in with OAuth 2.0 meanwhile; check the list and send it again"
		case gone > 1:
			errs[migrateFieldIDs] = strconv.Itoa(gone) + " ticked mailboxes were deleted or already sign in with OAuth 2.0 meanwhile; check the list and send it again"
		}
	}
	return test, errs
}

// migrateRows lists the mailboxes that sign in with a password, by name. On failure it has
// written the error page.
func (h *handler) migrateRows(w http.ResponseWriter, r *http.Request) ([]migrateRow, bool) {
	mbs, err := h.st.ListMailboxes(r.Context())
	if err != nil {
		h.serverError(w, r, "list the mailboxes", err)
		return nil, false
	}
	sort.SliceStable(mbs, func(i, j int) bool { return strings.ToLower(mbs[i].Name) < strings.ToLower(mbs[j].Name) })
	var rows []migrateRow
	for _, m := range mbs {
		if !migratable(m) {
			continue
		}
		rows = append(rows, migrateRow{Mailbox: m, Type: directionLabel(m.Direction), Client: protocolLabel(m.Protocol), Microsoft: microsoftHosted(m)})
	}
	return rows, true
}

// renderMigrate fills the table's ticks, the choices, the walk-through and the error
// summary, and renders the page.
func (h *handler) renderMigrate(w http.ResponseWriter, r *http.Request, v viewer, status int, d migrateData, rows []migrateRow) {
	var test *migrateRow
	for i := range rows {
		rows[i].Ticked = d.V.Ticked[rows[i].ID]
		rows[i].Test = rows[i].ID == d.V.TestID
		if rows[i].Test {
			test = &rows[i]
		}
	}
	d.Rows = rows
	for _, c := range credential.Clouds() {
		d.Clouds = append(d.Clouds, choice{c.Name, c.Label})
	}
	d.Clouds = append(d.Clouds, choice{credential.CloudCustom, "Another authority URL (below)"})
	if test != nil {
		d.Prechecks, d.PrecheckFor = diag.MicrosoftPrechecks(precheckMailbox(test.Mailbox, d)), test.Name
	}
	for _, k := range migrateFields {
		if msg := d.Errors[k]; msg != "" {
			d.Summary = append(d.Summary, migrateLabel(k)+": "+msg)
		}
	}
	if msg := d.Errors[""]; msg != "" {
		d.Summary = append(d.Summary, msg)
	}
	h.render(w, r, status, "migrate", h.data(v, "Migrate mailboxes to OAuth 2.0", "mailboxes", d))
}

// precheckMailbox is test mailbox m as the migration on the page would make it, for the
// Microsoft 365 walk-through.
func precheckMailbox(m store.Mailbox, d migrateData) store.Mailbox {
	pm := store.Mailbox{
		Name: m.Name, Direction: m.Direction, Protocol: m.Protocol, Address: m.Address, Login: m.Login,
		Auth: store.AuthOAuthApp, GraphURL: d.V.GraphURL,
		OAuth: store.OAuth{Provider: credential.ProviderMicrosoft, Cloud: d.V.Cloud, AuthorityURL: d.V.AuthorityURL,
			Tenant: d.V.Tenant, ClientID: d.V.ClientID},
		ClientSecretSet: d.TypedClientSecret, CertificateSet: d.TypedCertificate,
	}
	if d.V.ToGraph {
		pm.Protocol = mailbox.Graph
		if pm.Address != "" {
			pm.Login = pm.Address
		}
	}
	return pm
}
