package mailbox

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// The secret destination rule: a stored secret (password, client secret, certificate,
// refresh token) is only ever sent where it was entered for. Secrets are write-only, so an
// administrator who could point a mailbox elsewhere and press Test or Save would otherwise
// send a secret they cannot read to a server of their choosing. A change of where a secret
// goes therefore needs the secret again: TestInput and Update refuse with a field error on
// the secret, and contact nobody; Update deletes a stored secret whose destination changed
// and that the new settings do not need (a person's sign-in is dropped: sign in again).

// endpoint is where a stored secret of a mailbox goes, or a token made from it: the mail
// server (Host, Port, Security; Graph for a Graph mailbox; for an EWS mailbox without a
// host, Autodiscover: the autodiscover host named, or the address's domain whose hosts
// autodiscover asks) and, for OAuth, the token endpoint. The zero endpoint means the secret
// is not in use with these settings.
type endpoint struct {
	Host         string
	Port         int
	Security     string
	Graph        string
	Autodiscover string
	Token        string
}

const autodiscoverHostWords = "the autodiscover host "

// where names, for a person, where e sends a secret (without the token endpoint).
func (e endpoint) where() string {
	switch {
	case e.Graph != "":
		return e.Graph
	case e.Autodiscover != "":
		return e.Autodiscover
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// secretEndpoint is where m sends its stored secret called name (store.Secret*); false when
// the settings do not use it. The password goes to the mail server (password sign-in) or to
// the token endpoint (password grant); the OAuth secrets go to the token endpoint, and the
// access tokens made with them to the mail server.
func secretEndpoint(m store.Mailbox, name string) (endpoint, bool) {
	var e endpoint
	oauth := m.Auth != store.AuthPassword
	switch {
	case name == store.SecretPassword && m.Auth != store.AuthPassword && m.Auth != store.AuthOAuthROPC:
		return e, false
	case name != store.SecretPassword && !oauth:
		return e, false
	}
	switch {
	case m.Protocol == Graph:
		e.Graph = strings.ToLower(credential.GraphURLFor(m.GraphURL, m.OAuth.Cloud))
	case m.Protocol == EWS && m.Host == "" && m.AutodiscoverHost != "":
		e.Autodiscover = autodiscoverHostWords + strings.ToLower(strings.TrimSuffix(m.AutodiscoverHost, "."))
	case m.Protocol == EWS && m.Host == "":
		e.Autodiscover = "the autodiscover hosts of " + strings.ToLower(m.Address[strings.LastIndexByte(m.Address, '@')+1:])
	default:
		e.Host, e.Port, e.Security = strings.ToLower(strings.TrimSuffix(m.Host, ".")), m.Port, m.Security
	}
	if oauth {
		if p, err := credential.PlanFor(m, credential.AudienceOf(m.Protocol)); err == nil {
			e.Token = strings.ToLower(p.TokenURL)
		} else {
			o := m.OAuth
			e.Token = strings.ToLower(strings.Join([]string{o.Provider, o.Cloud, o.AuthorityURL, o.Tenant, o.TokenURL}, " "))
		}
	}
	return e, true
}

// change names, in words, what moved a secret from old to new, and where old sent it.
func change(oldM, newM store.Mailbox, old, new endpoint) (what, where string) {
	server := old.where()
	switch {
	case old.Graph != new.Graph && (old.Graph == "" || new.Graph == ""):
		return "the protocol", server
	case old.Graph != new.Graph:
		return "the Graph URL", old.Graph
	case old.Autodiscover != new.Autodiscover && old.Host != new.Host:
		return "the host", server
	case old.Autodiscover != new.Autodiscover && (strings.HasPrefix(old.Autodiscover, autodiscoverHostWords) || strings.HasPrefix(new.Autodiscover, autodiscoverHostWords)):
		return "the autodiscover host", server
	case old.Autodiscover != new.Autodiscover:
		return "the address's domain, where autodiscover looks", server
	case old.Host != new.Host:
		return "the host", server
	case old.Port != new.Port:
		return "the port", server
	case old.Security != new.Security:
		return "the connection security", server + " with " + old.Security
	}
	o, n := oldM.OAuth, newM.OAuth
	switch {
	case oldM.Auth != newM.Auth && (oldM.Auth == store.AuthPassword || newM.Auth == store.AuthPassword):
		what = "the sign-in method"
	case !strings.EqualFold(o.Provider, n.Provider):
		what = "the OAuth provider"
	case !strings.EqualFold(o.Cloud, n.Cloud):
		what = "the Microsoft cloud"
	case !strings.EqualFold(o.AuthorityURL, n.AuthorityURL):
		what = "the authority URL"
	case !strings.EqualFold(o.Tenant, n.Tenant):
		what = "the tenant"
	case !strings.EqualFold(o.TokenURL, n.TokenURL):
		what = "the token URL"
	default:
		what = "the sign-in settings"
	}
	if old.Token == "" {
		return what, server
	}
	return what, old.Token
}

// moved is a stored secret the new settings would send somewhere else.
type moved struct {
	what, where string // what changed, where the stored secret goes (empty: it was not in use)
}

// secretLabel names a secret for a person.
var secretLabel = map[string]string{
	store.SecretPassword:     "password",
	store.SecretClientSecret: "client secret",
	store.SecretCertificate:  "certificate",
	store.SecretRefreshToken: "refresh token",
}

// movedSecrets lists the secrets old has stored, in does not give anew, and the new
// settings m would send somewhere else than old does (or use when old did not).
func movedSecrets(old, m store.Mailbox, in Input) map[string]moved {
	given := func(v *vault.Secret) bool { return v != nil && v.Reveal() != "" }
	out := map[string]moved{}
	for _, x := range []struct {
		name   string
		stored bool
		typed  *vault.Secret
	}{
		{store.SecretPassword, old.PasswordSet, in.Password},
		{store.SecretClientSecret, old.ClientSecretSet, in.ClientSecret},
		{store.SecretCertificate, old.CertificateSet, in.Certificate},
		{store.SecretRefreshToken, old.RefreshTokenSet, in.RefreshToken},
	} {
		if !x.stored || given(x.typed) {
			continue
		}
		to, used := secretEndpoint(m, x.name)
		if !used {
			continue
		}
		from, wasUsed := secretEndpoint(old, x.name)
		if !wasUsed {
			out[x.name] = moved{what: "the sign-in method"}
			continue
		}
		if from != to {
			what, where := change(old, m, from, to)
			out[x.name] = moved{what: what, where: where}
		}
	}
	return out
}

// movedMessage is the field error of a secret that must be entered again.
func movedMessage(name string, mv moved) string {
	label := secretLabel[name]
	if mv.where == "" {
		return fmt.Sprintf("you changed %s: enter the %s again; the stored one was not in use with the old settings and is not sent anywhere new", mv.what, label)
	}
	return fmt.Sprintf("you changed %s: enter the %s again; the stored one is only sent to %s", mv.what, label, mv.where)
}

// secretRule applies the secret destination rule to a change of old into m (in as given):
// it returns the stored secrets that must not be used with m, and a *ValidationError when
// m needs one of them. For a test (forTest), a person's sign-in (refresh token) that moved
// is refused too; a save drops it instead, and the person signs in again.
func secretRule(old, m store.Mailbox, in Input, forTest bool) (map[string]moved, *ValidationError) {
	mv := movedSecrets(old, m, in)
	if len(mv) == 0 {
		return mv, nil
	}
	given := func(v *vault.Secret) bool { return v != nil && v.Reveal() != "" }
	available := func(name string, stored bool, typed *vault.Secret) bool {
		_, gone := mv[name]
		return given(typed) || (stored && !gone)
	}
	e := &ValidationError{Fields: map[string]string{}}
	switch m.Auth {
	case store.AuthPassword, store.AuthOAuthROPC:
		if x, ok := mv[store.SecretPassword]; ok {
			e.add(store.SecretPassword, movedMessage(store.SecretPassword, x))
		}
	case store.AuthOAuthApp:
		if !available(store.SecretClientSecret, old.ClientSecretSet, in.ClientSecret) && !available(store.SecretCertificate, old.CertificateSet, in.Certificate) {
			if x, ok := mv[store.SecretClientSecret]; ok {
				e.add(store.SecretClientSecret, movedMessage(store.SecretClientSecret, x))
			} else if x, ok := mv[store.SecretCertificate]; ok {
				e.add(store.SecretCertificate, movedMessage(store.SecretCertificate, x))
			}
		}
	case store.AuthOAuthDelegated:
		if x, ok := mv[store.SecretRefreshToken]; ok && forTest {
			field, msg := store.SecretRefreshToken, movedMessage(store.SecretRefreshToken, x)
			if m.OAuth.Provider != credential.ProviderCustom {
				field = "auth"
				msg = fmt.Sprintf("you changed %s: save the settings, then sign in again; the stored sign-in is only sent to %s", x.what, x.where)
			}
			e.add(field, msg)
		}
	}
	if len(e.Fields) > 0 {
		return mv, e
	}
	return mv, nil
}

// dropMoved deletes the stored secrets of mailbox id that moved (the new settings do not
// need them, or a person must sign in again).
func (s *Service) dropMoved(ctx context.Context, id int64, mv map[string]moved) error {
	for name := range mv {
		if err := s.store.DeleteSecret(ctx, id, name); err != nil {
			return fmt.Errorf("delete the %s that the new settings would send elsewhere: %w", secretLabel[name], err)
		}
	}
	return nil
}

func isMoved(mv map[string]moved, name string) bool {
	_, ok := mv[name]
	return ok
}

// mergeErrors joins the field errors of a and b (b's message wins for a field in both);
// nil when neither has any.
func mergeErrors(a, b *ValidationError) *ValidationError {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	for k, v := range b.Fields {
		a.Fields[k] = v
	}
	return a
}
