package mstest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// accessToken is a validated access token.
type accessToken struct {
	claims Claims
	app    *App
	user   *User // nil for app-only tokens
}

// tokenProblem says why an access token is refused, in Graph's words.
type tokenProblem struct{ msg string }

func (p *tokenProblem) Error() string { return p.msg }

// validateAccessLocked checks signature, expiry and revocation of an access token. It
// does not check the audience.
func (s *Server) validateAccessLocked(tok string) (*accessToken, *tokenProblem) {
	if _, err := splitJWT(tok); err != nil {
		return nil, &tokenProblem{"IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in JWS or JWE Compact Serialization Format."}
	}
	c, err := s.ParseToken(tok)
	if err != nil {
		return nil, &tokenProblem{"Access token validation failure."}
	}
	now := s.nowLocked()
	issued, ok := s.state.issued[c.TokenID]
	if !ok {
		return nil, &tokenProblem{"Access token validation failure."}
	}
	if !now.Before(time.Unix(c.Expires, 0)) || issued.Before(s.state.accessNotBefore) {
		return nil, &tokenProblem{"Lifetime validation failed, the token is expired."}
	}
	app := s.state.apps[c.AppID]
	if app == nil {
		return nil, &tokenProblem{"Access token validation failure."}
	}
	at := &accessToken{claims: c, app: app}
	if c.IDType == "user" {
		at.user = app.tenant.users[c.ObjectID]
		if at.user == nil {
			return nil, &tokenProblem{"Access token validation failure."}
		}
		if issued.Before(at.user.sessionsValidFrom) {
			return nil, &tokenProblem{"Lifetime validation failed, the token is expired."}
		}
	}
	return at, nil
}

// introspection services Dovecot names (X-Dovecot-Auth-Service, sent with
// send_auth_headers = yes) and what each needs.
var protocolNeeds = map[string]struct{ role, scope string }{
	"imap":       {RoleIMAPAccessAsApp, "IMAP.AccessAsUser.All"},
	"pop3":       {RolePOPAccessAsApp, "POP.AccessAsUser.All"},
	"submission": {RoleSMTPSendAsApp, "SMTP.Send"},
	"smtp":       {RoleSMTPSendAsApp, "SMTP.Send"},
}

// serveIntrospect answers RFC 7662 introspection for Dovecot's oauth2 passdb.
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	tok := ""
	if r.Method == http.MethodPost {
		tok = r.PostFormValue("token")
	}
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	if h := r.Header.Get("Authorization"); tok == "" && strings.HasPrefix(h, "Bearer ") {
		tok = strings.TrimPrefix(h, "Bearer ")
	}
	service := strings.ToLower(r.Header.Get("X-Dovecot-Auth-Service"))
	want := r.URL.Query().Get("mailbox")
	s.mu.Lock()
	answer, why := s.introspectLocked(tok, want, service)
	s.mu.Unlock()
	if why != "" {
		s.log.Info("mstest: introspection: token inactive", "reason", why)
	}
	writeJSONStatus(w, http.StatusOK, answer)
}

func (s *Server) introspectLocked(tok, want, service string) (map[string]any, string) {
	inactive := map[string]any{"active": false}
	at, prob := s.validateAccessLocked(tok)
	if prob != nil {
		return inactive, prob.msg
	}
	c := at.claims
	if c.Audience != ExchangeAudience && c.Audience != OutlookAudience {
		return inactive, fmt.Sprintf("audience %s is not Exchange Online", c.Audience)
	}
	needs, known := protocolNeeds[service]
	var mailbox string
	if at.user == nil {
		ok := slices.ContainsFunc(c.Roles, func(r string) bool {
			if known {
				return r == needs.role
			}
			return r == RoleIMAPAccessAsApp || r == RolePOPAccessAsApp || r == RoleSMTPSendAsApp
		})
		if !ok {
			return inactive, "app token without an IMAP/POP/SMTP AccessAsApp role"
		}
		if want != "" {
			mailbox = want
		} else {
			var granted []string
			for m := range at.app.fullAccess {
				granted = append(granted, m)
			}
			if len(granted) != 1 {
				return inactive, fmt.Sprintf("app holds FullAccess on %d mailboxes; use IntrospectURLFor(mailbox)", len(granted))
			}
			mailbox = granted[0]
		}
		if !at.app.fullAccess[strings.ToLower(mailbox)] {
			return inactive, "app has no FullAccess on " + mailbox
		}
	} else {
		scopes := strings.Fields(c.Scope)
		ok := slices.ContainsFunc(scopes, func(sc string) bool {
			if known {
				return strings.EqualFold(sc, needs.scope)
			}
			return strings.EqualFold(sc, "IMAP.AccessAsUser.All") || strings.EqualFold(sc, "POP.AccessAsUser.All") || strings.EqualFold(sc, "SMTP.Send")
		})
		if !ok {
			return inactive, "delegated token without an IMAP/POP/SMTP scope"
		}
		mailbox = at.user.cfg.UPN
		if want != "" && !strings.EqualFold(want, mailbox) {
			if !at.user.fullAccess[strings.ToLower(want)] {
				return inactive, "user has no FullAccess on " + want
			}
			mailbox = want
		}
	}
	mb := s.state.mail.byAddress[strings.ToLower(mailbox)]
	if mb == nil {
		return inactive, "no mailbox " + mailbox
	}
	cfg := mb.owner.cfg
	if cfg.NoMailbox {
		return inactive, "mailbox " + mailbox + " is not licensed for Exchange Online"
	}
	disabled := map[string]bool{"imap": cfg.IMAPDisabled, "pop3": cfg.POPDisabled, "submission": cfg.SMTPAuthDisabled, "smtp": cfg.SMTPAuthDisabled}
	if known && disabled[service] {
		return inactive, service + " is disabled for " + mailbox
	}
	if !known && (cfg.IMAPDisabled || cfg.POPDisabled || cfg.SMTPAuthDisabled) {
		return inactive, "a protocol is disabled for " + mailbox + " and Dovecot did not say which it checks"
	}
	return map[string]any{
		"active":     true,
		"email":      cfg.UPN,
		"username":   cfg.UPN,
		"scope":      strings.TrimSpace(c.Scope + " " + strings.Join(c.Roles, " ")),
		"client_id":  c.AppID,
		"aud":        c.Audience,
		"sub":        c.Subject,
		"exp":        c.Expires,
		"iat":        c.IssuedAt,
		"token_type": "Bearer",
	}, ""
}
