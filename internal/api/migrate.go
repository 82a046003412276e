package api

import (
	"net/http"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// migrateBody is POST /api/v1/mailboxes/migrate: the OAuth sign-in to move the listed
// mailboxes to (the seed's "migrate from password to OAuth", done self-service).
type migrateBody struct {
	MailboxIDs []int64 `json:"mailbox_ids"`
	Auth       string  `json:"auth"` // default oauth_app
	OAuth      struct {
		Provider        string `json:"provider"`
		Cloud           string `json:"cloud"`
		AuthorityURL    string `json:"authority_url"`
		Tenant          string `json:"tenant"`
		ClientID        string `json:"client_id"`
		Scopes          string `json:"scopes"`
		SecretExpiresAt string `json:"secret_expires_at"`
	} `json:"oauth"`
	GraphURL          string `json:"graph_url"`
	ClientSecret      string `json:"client_secret"`
	ClientCertificate string `json:"client_certificate"`
	// ToGraph moves IMAP/POP3/SMTP mailboxes to Microsoft Graph; false keeps the protocol
	// and the IMAP cursor and changes only the login (XOAUTH2).
	ToGraph bool `json:"to_graph"`
}

// migrationResultJSON is one mailbox's outcome.
type migrationResultJSON struct {
	MailboxID  int64          `json:"mailbox_id"`
	Name       string         `json:"name"`
	Migrated   bool           `json:"migrated"`
	RolledBack bool           `json:"rolled_back"`
	Error      string         `json:"error,omitempty"`
	Test       testReportJSON `json:"test"`
}

// migrateMailboxes moves the listed mailboxes to an OAuth sign-in in one step: each is
// saved with the new sign-in and tested; one whose test fails is put back as it was.
// The answer lists each mailbox's outcome (200 even when some were rolled back).
func (s *server) migrateMailboxes(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	var b migrateBody
	if !decodeBody(w, r, &b) {
		return
	}
	if len(b.MailboxIDs) == 0 {
		writeFieldErrors(w, map[string]string{"mailbox_ids": "list the ids of the mailboxes to migrate"})
		return
	}
	expires, err := ParseSecretExpiry(b.OAuth.SecretExpiresAt)
	if err != nil {
		writeFieldErrors(w, map[string]string{oauthFieldPrefix + "secret_expires_at": hintSecretExpiry})
		return
	}
	mig := mailbox.Migration{
		Auth: b.Auth, GraphURL: b.GraphURL, ToGraph: b.ToGraph,
		OAuth: store.OAuth{Provider: b.OAuth.Provider, Cloud: b.OAuth.Cloud, AuthorityURL: b.OAuth.AuthorityURL,
			Tenant: b.OAuth.Tenant, ClientID: b.OAuth.ClientID, Scopes: b.OAuth.Scopes, SecretExpiresAt: expires},
	}
	if b.ClientSecret != "" {
		sec := vault.NewSecret(b.ClientSecret)
		mig.ClientSecret = &sec
	}
	if b.ClientCertificate != "" {
		cert := vault.NewSecret(b.ClientCertificate)
		mig.Certificate = &cert
	}
	results, err := s.mailboxes.Migrate(r.Context(), user.Username, b.MailboxIDs, mig)
	if err != nil {
		s.writeChangeError(w, r, "the mailboxes", "migrate", err)
		return
	}
	out := struct {
		Results []migrationResultJSON `json:"results"`
	}{Results: []migrationResultJSON{}}
	for _, res := range results {
		out.Results = append(out.Results, migrationResultJSON{
			MailboxID: res.MailboxID, Name: res.Name, Migrated: res.Migrated, RolledBack: res.RolledBack,
			Error: res.Error, Test: toTestReportJSON(res.Report),
		})
	}
	writeJSON(w, http.StatusOK, out)
}
