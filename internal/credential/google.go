package credential

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// ProviderGoogle is Google Workspace (store.OAuth.Provider): a service account with
// domain-wide delegation (store.AuthOAuthApp, its key file stored as the client secret)
// or "Sign in with Google" (store.AuthOAuthDelegated).
const ProviderGoogle = "google"

// Google's endpoints, scope and mail hosts.
const (
	GoogleTokenURL     = "https://oauth2.googleapis.com/token"
	GoogleAuthorizeURL = "https://accounts.google.com/o/oauth2/v2/auth"
	// GoogleScopeMail is the one scope of IMAP, SMTP and the full Gmail API; domain-wide
	// delegation must list it for the service account's client id.
	GoogleScopeMail = "https://mail.google.com/"
	GoogleIMAPHost  = "imap.gmail.com"
	GoogleSMTPHost  = "smtp.gmail.com"
	GoogleGmailURL  = "https://gmail.googleapis.com"
)

// grantJWTBearer is the grant of a service account (RFC 7523 §2.1).
const grantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// ServiceAccountKey is what postroom reads of a Google service account's key file (the
// JSON the Google Cloud console downloads).
type ServiceAccountKey struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	ClientID     string `json:"client_id"`
	TokenURI     string `json:"token_uri"`
}

// ParseServiceAccountKey reads and checks a key file. Errors say what to upload instead;
// they never quote the key.
func ParseServiceAccountKey(data []byte) (ServiceAccountKey, error) {
	var k ServiceAccountKey
	if err := json.Unmarshal(data, &k); err != nil {
		return k, errors.New("this is not a service account key file: in Google Cloud console > IAM & Admin > Service accounts > the account > Keys, add a JSON key and paste the whole file")
	}
	if k.Type != "service_account" {
		return k, fmt.Errorf("the key file is of type %q, not a service account's (type service_account)", k.Type)
	}
	if k.ClientEmail == "" || k.PrivateKey == "" {
		return k, errors.New("the key file lacks client_email or private_key: download a new JSON key")
	}
	blk, _ := pem.Decode([]byte(k.PrivateKey))
	bad := blk == nil
	if !bad {
		if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
			_, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
			bad = err != nil
		}
	}
	if bad {
		return k, errors.New("the key file's private_key cannot be read: download a new JSON key")
	}
	return k, nil
}

// GoogleServiceAccount returns a TokenFunc for a Google service account with domain-wide
// delegation impersonating subject (the mailbox address): the JWT bearer grant, signed
// with the key file's private key, for cfg.Scopes (default GoogleScopeMail), at
// cfg.TokenURL (default the key file's token_uri, then Google's).
func GoogleServiceAccount(cfg OAuthConfig, key vault.Secret, subject string) (connector.TokenFunc, error) {
	k, err := ParseServiceAccountKey([]byte(key.Reveal()))
	if err != nil {
		return nil, err
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = k.TokenURI
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = GoogleTokenURL
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{GoogleScopeMail}
	}
	if cfg.ClientID == "" {
		cfg.ClientID = k.ClientID
	}
	ts := newTokenSource(cfg, grantJWTBearer)
	ts.subject = subject
	jc := &jwt.Config{Email: k.ClientEmail, PrivateKey: []byte(k.PrivateKey), PrivateKeyID: k.PrivateKeyID,
		Subject: subject, Scopes: cfg.Scopes, TokenURL: cfg.TokenURL}
	ts.fetch = func(ctx context.Context) (*oauth2.Token, error) {
		tok, err := jc.TokenSource(ctx).Token()
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "" {
			// x/oauth2/jwt does not read the error body (RFC 6749 §5.2): do it here.
			var b struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(re.Body, &b) == nil {
				re.ErrorCode, re.ErrorDescription = b.Error, b.Description
			}
		}
		return tok, err
	}
	return ts.token, nil
}

// googleAdvice names the fix of a Google token endpoint error of a service account, or
// "" when the generic advice fits.
func googleAdvice(ee *EndpointError, clientID, subject string) string {
	d := ee.Description
	switch {
	case ee.Code == "unauthorized_client":
		id := clientID
		if id == "" {
			id = "the service account's client id (its key file's client_id)"
		}
		return fmt.Sprintf("domain-wide delegation is missing: in the Google Admin console > Security > Access and data control > API controls > Manage Domain Wide Delegation, add client id %s with the scope %s", id, GoogleScopeMail)
	case ee.Code == "invalid_grant" && strings.Contains(d, "Invalid email or User ID"):
		return fmt.Sprintf("Google has no user %s in the organisation of the service account: check the mailbox address (it must be a user's primary address, not an alias or a group)", subject)
	case ee.Code == "invalid_grant" && (strings.Contains(d, "iat and exp") || strings.Contains(d, "timeframe")):
		return "Google refused the sign-in's time stamps: this server's clock is wrong; synchronise it (NTP)"
	case ee.Code == "invalid_grant" && strings.Contains(d, "Signature"):
		return "Google does not know this key: it was deleted or belongs to another service account; upload a current JSON key of the service account"
	case ee.Code == "invalid_grant" && strings.Contains(d, "account not found"):
		return "the service account no longer exists: create one and upload its JSON key"
	}
	return ""
}

// googlePlan fills a Google mailbox's endpoints (the TokenURL and AuthorizeURL settings
// override them, e.g. for a local stand-in) and its scope.
func googlePlan(m store.Mailbox, p Plan) (Plan, error) {
	if m.Auth == store.AuthOAuthROPC {
		return Plan{}, fmt.Errorf("mailbox %q: Google has no password grant; use a service account or Sign in with Google", m.Name)
	}
	p.TokenURL, p.AuthorizeURL = m.OAuth.TokenURL, m.OAuth.AuthorizeURL
	if p.TokenURL == "" && m.Auth != store.AuthOAuthApp {
		p.TokenURL = GoogleTokenURL // a service account's default is its key file's token_uri
	}
	if p.AuthorizeURL == "" {
		p.AuthorizeURL = GoogleAuthorizeURL
	}
	if len(p.Scopes) == 0 {
		p.Scopes = []string{GoogleScopeMail}
	}
	return p, nil
}

// googleServiceAccountFor is TokenFuncFor's service account branch.
func googleServiceAccountFor(m store.Mailbox, cfg OAuthConfig, sec MailboxSecrets) (connector.TokenFunc, error) {
	if sec.ClientSecret.Reveal() == "" {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "oauth settings", Err: fmt.Errorf("no service account key"),
			Advice: "upload the service account's JSON key file in the mailbox settings"}
	}
	subject := m.Address
	if subject == "" {
		subject = m.Login
	}
	fn, err := GoogleServiceAccount(cfg, sec.ClientSecret, subject)
	if err != nil {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "oauth service account key", Err: err, Advice: err.Error()}
	}
	return fn, nil
}

// GmailBaseURL is the Gmail API root of a gmail mailbox, from its host, port and
// security: https://host[:port], or http:// for a server on this machine without TLS
// (security "none", a local stand-in).
func GmailBaseURL(m store.Mailbox) string {
	if m.Host == "" {
		return GoogleGmailURL
	}
	scheme := "https"
	if m.Security == "none" {
		scheme = "http"
	}
	if m.Port == 0 || (scheme == "https" && m.Port == 443) {
		return scheme + "://" + m.Host
	}
	return scheme + "://" + net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
}
