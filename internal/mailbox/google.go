package mailbox

import (
	"strings"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Google Workspace's ports: IMAP over TLS, POP3 over TLS, SMTP submission with STARTTLS.
const (
	googleIMAPPort = 993
	googlePOPPort  = 995
	googleSMTPPort = 587
	googlePOPHost  = "pop.gmail.com"
)

// googleDefaults fills a Google mailbox's defaults: Gmail's hosts and ports when no host
// is given, and the service account's client id from a given key file.
func googleDefaults(in Input, m *store.Mailbox) {
	if m.Protocol == Gmail {
		gmailDefaults(in, m)
	} else if strings.TrimSpace(in.Host) == "" {
		switch m.Protocol {
		case IMAP:
			m.Host, m.Security, m.Port = credential.GoogleIMAPHost, SecurityTLS, googleIMAPPort
		case POP3:
			m.Host, m.Security, m.Port = googlePOPHost, SecurityTLS, googlePOPPort
		case SMTP:
			m.Host, m.Security, m.Port = credential.GoogleSMTPHost, SecurityStartTLS, googleSMTPPort
		}
		if in.Port != 0 {
			m.Port = in.Port
		}
	}
	if m.Auth == store.AuthOAuthApp && m.OAuth.ClientID == "" && given(in.ClientSecret) {
		if k, err := credential.ParseServiceAccountKey([]byte(in.ClientSecret.Reveal())); err == nil {
			m.OAuth.ClientID = k.ClientID
		}
	}
}

func given(v *vault.Secret) bool { return v != nil && v.Reveal() != "" }

// validateGoogle checks the sign-in settings of a Google mailbox.
func validateGoogle(m store.Mailbox, have secretsAt, e *ValidationError) {
	o := m.OAuth
	if m.Protocol == Graph {
		e.add("oauth_provider", "a Graph mailbox signs in with Microsoft")
	}
	for field, u := range map[string]string{"oauth_token_url": o.TokenURL, "oauth_authorize_url": o.AuthorizeURL} {
		if u != "" {
			if err := credential.ValidAuthorityURL(u); err != nil {
				e.add(field, err.Error())
			}
		}
	}
	switch m.Auth {
	case store.AuthOAuthROPC:
		e.add("auth", "Google has no password grant: choose a service account (oauth_app) or Sign in with Google (oauth_delegated)")
	case store.AuthOAuthApp:
		switch {
		case have.serviceAccountKeyErr != "":
			e.add("client_secret", have.serviceAccountKeyErr)
		case !have.clientSecret:
			e.add("client_secret", "paste the service account's JSON key file (Google Cloud console > IAM & Admin > Service accounts > the account > Keys > Add key > JSON)")
		}
		if m.Address == "" && m.Login == "" {
			e.add("address", "enter the mailbox address the service account opens (the user it impersonates)")
		}
	case store.AuthOAuthDelegated:
		if o.ClientID == "" {
			e.add("oauth_client_id", "enter the OAuth client id (Google Cloud console > APIs & Services > Credentials > OAuth 2.0 Client IDs)")
		}
	}
}

// Gmail is the protocol of mailboxes read and sent through the Gmail API (provider
// google). Host, port and security name the API's host: gmail.googleapis.com:443 over
// TLS by default; plain http only on this machine (a local stand-in).
const Gmail = "gmail"

// Gmail API defaults.
const (
	gmailHost = "gmail.googleapis.com"
	gmailPort = 443
)

// gmailDefaults fills a Gmail API mailbox's host, label and after-processing action.
func gmailDefaults(in Input, m *store.Mailbox) {
	if strings.TrimSpace(in.Host) == "" {
		m.Host, m.Port, m.Security = gmailHost, gmailPort, SecurityTLS
		if in.Port != 0 {
			m.Port = in.Port
		}
	}
	if m.Login == "" {
		m.Login = m.Address
	}
	if m.Direction == store.Outbound {
		m.Folder, m.AfterAction, m.MoveFolder = "", "", ""
		return
	}
	if m.Folder == "" {
		m.Folder = "INBOX"
	}
	if m.AfterAction == "" {
		m.AfterAction = store.AfterMarkRead
	}
}

// validateGmail checks what only a Gmail API mailbox needs.
func validateGmail(m store.Mailbox, e *ValidationError) {
	if m.Protocol != Gmail {
		return
	}
	if m.Auth == store.AuthPassword || m.OAuth.Provider != credential.ProviderGoogle {
		e.add("auth", "a Gmail API mailbox signs in with Google: choose the provider google with a service account (oauth_app) or Sign in with Google (oauth_delegated)")
	}
	if m.Address == "" {
		e.add("address", "enter the address of the Google Workspace mailbox, like support@example.com")
	}
	if m.Direction != store.Inbound {
		return
	}
	switch m.AfterAction {
	case store.AfterMarkRead, store.AfterKeep:
	case store.AfterMove:
		if m.MoveFolder == "" {
			e.add("move_folder", "enter the label processed messages get (its label id)")
		}
	default:
		e.add("after_action", "choose mark_read, move or keep for a Gmail API mailbox")
	}
}
