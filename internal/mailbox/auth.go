package mailbox

import (
	"context"
	"strings"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Graph is the protocol of Microsoft Graph mailboxes.
const Graph = "graph"

// Exchange Online ports (ms365-protocol.md §2.1).
const (
	exoIMAPPort = 993
	exoPOPPort  = 995
	exoSMTPPort = 587
)

// normalizeAuth fills the sign-in defaults of m from in: the password method when none is
// given; for OAuth the Microsoft provider and global cloud; for a Microsoft mailbox
// without a host, Exchange Online's hosts and ports for IMAP, POP3 and SMTP; for Graph, no
// host, the Inbox, and the mailbox address as the login.
func normalizeAuth(in Input, m *store.Mailbox) {
	m.Auth = strings.ToLower(strings.TrimSpace(in.Auth))
	if m.Auth == "" {
		m.Auth = store.AuthPassword
		if m.Protocol == Graph {
			m.Auth = store.AuthOAuthApp
		}
	}
	m.GraphURL = strings.TrimRight(strings.TrimSpace(in.GraphURL), "/")
	if m.Auth == store.AuthPassword {
		m.OAuth = store.OAuth{}
	} else {
		o := in.OAuth
		m.OAuth = store.OAuth{
			Provider:        strings.ToLower(strings.TrimSpace(o.Provider)),
			Cloud:           strings.ToLower(strings.TrimSpace(o.Cloud)),
			AuthorityURL:    strings.TrimRight(strings.TrimSpace(o.AuthorityURL), "/"),
			Tenant:          strings.TrimSpace(o.Tenant),
			ClientID:        strings.TrimSpace(o.ClientID),
			TokenURL:        strings.TrimSpace(o.TokenURL),
			AuthorizeURL:    strings.TrimSpace(o.AuthorizeURL),
			Scopes:          strings.Join(strings.Fields(o.Scopes), " "),
			SecretExpiresAt: o.SecretExpiresAt,
		}
		if m.OAuth.Provider == "" {
			m.OAuth.Provider = credential.ProviderMicrosoft
		}
		if m.OAuth.Provider == credential.ProviderMicrosoft {
			m.OAuth.TokenURL, m.OAuth.AuthorizeURL = "", ""
			if m.OAuth.Cloud == "" {
				m.OAuth.Cloud = credential.CloudGlobal
			}
			if m.OAuth.Cloud != credential.CloudCustom {
				m.OAuth.AuthorityURL = ""
			}
		} else {
			m.OAuth.Cloud, m.OAuth.AuthorityURL = "", ""
		}
	}
	if m.Protocol == Graph {
		m.Host, m.Port, m.Security = "", 0, ""
		if m.Folder == "" {
			m.Folder = "Inbox"
		}
		if m.Direction == store.Outbound {
			m.Folder, m.AfterAction, m.MoveFolder = "", "", ""
		} else if m.AfterAction == "" {
			m.AfterAction = store.AfterMarkRead
		}
		if m.Login == "" {
			m.Login = m.Address
		}
		return
	}
	m.GraphURL = ""
	if m.Auth != store.AuthPassword && m.OAuth.Provider == credential.ProviderMicrosoft && strings.TrimSpace(in.Host) == "" {
		cloud, ok := credential.CloudByName(m.OAuth.Cloud)
		if !ok {
			return
		}
		switch m.Protocol {
		case IMAP:
			m.Host, m.Security, m.Port = cloud.IMAPHost, SecurityTLS, exoIMAPPort
		case POP3:
			m.Host, m.Security, m.Port = cloud.IMAPHost, SecurityTLS, exoPOPPort
		case SMTP:
			m.Host, m.Security, m.Port = cloud.SMTPHost, SecurityStartTLS, exoSMTPPort
		}
		if in.Port != 0 {
			m.Port = in.Port
		}
	}
	if m.Auth != store.AuthPassword && m.OAuth.Provider == credential.ProviderGoogle {
		googleDefaults(in, m)
	}
	if m.Auth == store.AuthOAuthApp && m.Login == "" {
		m.Login = m.Address // app-only XOAUTH2 names the mailbox it opens
	}
}

// validateAuth checks the sign-in settings of m.
func validateAuth(m store.Mailbox, have secretsAt, e *ValidationError) {
	switch m.Auth {
	case store.AuthPassword:
		if m.Protocol == Graph {
			e.add("auth", `a Graph mailbox signs in with OAuth 2.0: choose "Microsoft 365 app" (oauth_app: the app registration signs in with a client secret or certificate) or "A person signs in" (oauth_delegated)`)
		}
		return
	case store.AuthOAuthApp, store.AuthOAuthDelegated, store.AuthOAuthROPC:
	default:
		e.add("auth", "choose password, oauth_app, oauth_delegated or oauth_ropc")
		return
	}
	o := m.OAuth
	switch o.Provider {
	case credential.ProviderMicrosoft:
		if _, ok := credential.CloudByName(o.Cloud); !ok {
			e.add("oauth_cloud", "choose global, usgov, usgov-dod, china or custom")
		}
		if o.Cloud == credential.CloudCustom {
			if o.AuthorityURL == "" {
				e.add("oauth_authority_url", "enter the authority (login host) URL, e.g. https://login.microsoftonline.com")
			} else if err := credential.ValidAuthorityURL(o.AuthorityURL); err != nil {
				e.add("oauth_authority_url", err.Error())
			}
		}
		switch {
		case o.Tenant == "" && m.Auth != store.AuthOAuthDelegated:
			e.add("oauth_tenant", "enter the directory (tenant) id: Microsoft Entra admin center > Overview > Tenant ID")
		case o.Tenant != "" && !credential.ValidTenant(o.Tenant):
			e.add("oauth_tenant", "enter the directory (tenant) id, a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47, or a verified domain like contoso.onmicrosoft.com")
		case m.Auth == store.AuthOAuthApp && (strings.EqualFold(o.Tenant, "organizations") || strings.EqualFold(o.Tenant, "common")):
			e.add("oauth_tenant", "an app signing in as itself needs its own directory (tenant) id, not organizations or common")
		}
		if o.ClientID == "" {
			e.add("oauth_client_id", "enter the application (client) id: App registrations > your app > Overview")
		} else if !credential.ValidGUID(o.ClientID) {
			e.add("oauth_client_id", "the application (client) id is a GUID like 11111111-2222-3333-4444-555555555555")
		}
	case credential.ProviderCustom:
		if m.Protocol == Graph {
			e.add("oauth_provider", "a Graph mailbox signs in with Microsoft")
		}
		if o.TokenURL == "" {
			e.add("oauth_token_url", "enter the provider's token endpoint URL")
		} else if err := credential.ValidAuthorityURL(o.TokenURL); err != nil {
			e.add("oauth_token_url", err.Error())
		}
		if o.AuthorizeURL != "" {
			if err := credential.ValidAuthorityURL(o.AuthorizeURL); err != nil {
				e.add("oauth_authorize_url", err.Error())
			}
		}
		if o.ClientID == "" {
			e.add("oauth_client_id", "enter the OAuth client id")
		}
	case credential.ProviderGoogle:
		validateGoogle(m, have, e)
		return
	default:
		e.add("oauth_provider", "choose microsoft, google or custom")
	}
	if m.GraphURL != "" {
		if err := credential.ValidAuthorityURL(m.GraphURL); err != nil {
			e.add("graph_url", err.Error())
		}
	}
	if have.certificateErr != "" {
		e.add("client_certificate", have.certificateErr)
	}
	if m.Auth == store.AuthOAuthApp && !have.clientSecret && !have.certificate {
		e.add("client_secret", "enter the app's client secret (App registrations > Certificates & secrets), or upload its certificate")
	}
	if m.Auth == store.AuthOAuthROPC && m.Login == "" {
		e.add("login", "enter the account that signs in (its user principal name)")
	}
	if (m.Protocol == IMAP || m.Protocol == POP3 || m.Protocol == SMTP) && m.Login == "" && m.Auth != store.AuthOAuthDelegated {
		e.add("login", "enter the mailbox address the token opens (the XOAUTH2 user)")
	}
}

// givenSecrets tells which secrets in gives or old already has, and whether a given
// certificate can be read.
func givenSecrets(in Input, old store.Mailbox) secretsAt {
	given := func(v *vault.Secret) bool { return v != nil && v.Reveal() != "" }
	have := secretsAt{
		password:     old.PasswordSet || given(in.Password),
		clientSecret: old.ClientSecretSet || given(in.ClientSecret),
		certificate:  old.CertificateSet || given(in.Certificate),
	}
	if given(in.ClientSecret) && strings.EqualFold(strings.TrimSpace(in.OAuth.Provider), credential.ProviderGoogle) && strings.EqualFold(strings.TrimSpace(in.Auth), store.AuthOAuthApp) {
		if _, err := credential.ParseServiceAccountKey([]byte(in.ClientSecret.Reveal())); err != nil {
			have.serviceAccountKeyErr = err.Error()
		}
	}
	if given(in.Certificate) {
		if _, err := credential.ParseCertificate([]byte(in.Certificate.Reveal())); err != nil {
			have.certificateErr = err.Error()
		}
	}
	return have
}

// saveSecrets stores the secrets in gives; a nil or empty one keeps what is stored.
func (s *Service) saveSecrets(ctx context.Context, id int64, in Input) error {
	secrets := s.passwords.Secrets()
	for _, x := range []struct {
		name  string
		value *vault.Secret
	}{
		{store.SecretPassword, in.Password},
		{store.SecretClientSecret, in.ClientSecret},
		{store.SecretCertificate, in.Certificate},
		{store.SecretRefreshToken, in.RefreshToken},
	} {
		if x.value == nil || x.value.Reveal() == "" {
			continue
		}
		if err := secrets.Set(ctx, id, x.name, *x.value); err != nil {
			return err
		}
	}
	if s.OnCredentialsChange != nil {
		s.OnCredentialsChange(id)
	}
	return nil
}

func mask(set bool) string {
	if set {
		return "***"
	}
	return "(none)"
}
