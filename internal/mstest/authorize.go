package mstest

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The sign-in pages use the element names and ids of Microsoft's own login page, so a
// browser test reads like one against the real thing:
//
//	sign-in:  input name=loginfmt id=i0116 (user name), input name=passwd id=i0118
//	          (password), input type=submit id=idSIButton9 ("Sign in")
//	MFA:      button id=idSubmit_SAOTCC_Continue ("Approve", a simulated second factor)
//	consent:  button id=idBtn_Accept ("Accept"), button id=idBtn_Back ("Cancel")
//
// Errors that do not end the flow (wrong password, unknown user, disabled account) show on
// the sign-in page in an element with id=passwordError or id=usernameError.

// signInFlow is one authorize request in progress.
type signInFlow struct {
	app                                     *App
	tenantSeg                               string
	redirectURI, scope, state, responseMode string
	challenge, method, loginHint, prompt    string
	nonce                                   string // OpenID Connect: goes into the id token
	user                                    *User  // after the password step
	mfaDone                                 bool
	expires                                 time.Time
}

// flowLifetime bounds how long a sign-in page can be left open.
const flowLifetime = 30 * time.Minute

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:28rem;margin:3rem auto}label,input,button{display:block;margin:.4rem 0}
.local{background:#fff4ce;padding:.5rem;font-size:.85rem}.error{color:#a80000}</style></head>
<body>
<p class="local">Local stand-in of Microsoft Entra ID (postroom mstest). Nothing here reaches Microsoft.</p>
<h1>{{.Title}}</h1>
{{if .AppName}}<p>to continue to <strong id="appName">{{.AppName}}</strong></p>{{end}}
{{if .Error}}<p class="error" id="{{.ErrorID}}">{{.Error}}</p>{{end}}
{{if eq .Step "signin"}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="flow" value="{{.Flow}}"><input type="hidden" name="step" value="signin">
<label for="i0116">Email, phone, or Skype</label>
<input type="email" name="loginfmt" id="i0116" value="{{.Username}}" autocomplete="username">
<label for="i0118">Password</label>
<input type="password" name="passwd" id="i0118" autocomplete="current-password">
<input type="submit" id="idSIButton9" value="Sign in">
</form>
{{else if eq .Step "mfa"}}
<p id="mfaPrompt">Approve the sign-in request for {{.Username}} (simulated second factor).</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="flow" value="{{.Flow}}"><input type="hidden" name="step" value="mfa">
<button type="submit" id="idSubmit_SAOTCC_Continue">Approve</button>
</form>
{{else if eq .Step "consent"}}
<p>{{.AppName}} needs permission to:</p>
<ul id="permissions">{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="{{.Action}}">
<input type="hidden" name="flow" value="{{.Flow}}"><input type="hidden" name="step" value="consent">
<button type="submit" name="consent" value="accept" id="idBtn_Accept">Accept</button>
<button type="submit" name="consent" value="decline" id="idBtn_Back">Cancel</button>
</form>
{{else if eq .Step "formpost"}}
<form method="post" action="{{.Action}}" id="formpost">
{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<noscript><input type="submit" value="Continue"></noscript>
</form>
<script>document.getElementById("formpost").submit()</script>
{{else}}
<p id="errorCode">{{.Code}}</p>
{{end}}
</body></html>
`))

type pageData struct {
	Title, AppName, Error, ErrorID, Step, Action, Flow, Username, Code string
	Scopes                                                             []string
	Fields                                                             map[string]string
}

func (s *Server) renderPage(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

// renderErrorPage shows an error that cannot go back to the client (no trusted redirect).
func (s *Server) renderErrorPage(w http.ResponseWriter, e *aadError) {
	s.renderPage(w, http.StatusBadRequest, pageData{Title: "Sorry, but we're having trouble signing you in.",
		Step: "error", Code: e.Error()})
}

// redirectError sends the browser back to the client with an error (reference §1.5).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, responseMode string, e *aadError) {
	now := s.now().UTC()
	fields := map[string]string{
		"error": e.err,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.code, e.msg, NewGUID(), NewGUID(), now.Format(aadTimestamp)),
		"error_uri": fmt.Sprintf("%s/error?code=%d", s.loginURL, e.code),
	}
	if state != "" {
		fields["state"] = state
	}
	s.redirectBack(w, r, redirectURI, responseMode, fields)
}

func (s *Server) redirectBack(w http.ResponseWriter, r *http.Request, redirectURI, responseMode string, fields map[string]string) {
	if responseMode == "form_post" {
		s.renderPage(w, http.StatusOK, pageData{Title: "Working...", Step: "formpost", Action: redirectURI, Fields: fields})
		return
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		s.renderErrorPage(w, newAADError("invalid_request", 50011, "The redirect URI '%s' is not a URL.", redirectURI))
		return
	}
	q := u.Query()
	for k, v := range fields {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	seg := r.PathValue("tenant")
	s.mu.Lock()
	defer s.mu.Unlock()
	t, special, e := s.resolveTenantLocked(seg)
	if e != nil {
		s.renderErrorPage(w, e)
		return
	}
	if special == "consumers" {
		s.renderErrorPage(w, newAADError("invalid_request", 9001023, "The grant type isn't supported over the /common or /consumers endpoints."))
		return
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		s.renderErrorPage(w, missingParam("client_id"))
		return
	}
	app, e := s.lookupAppLocked(t, clientID, seg)
	if e != nil {
		s.renderErrorPage(w, e)
		return
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" {
		s.renderErrorPage(w, missingParam("redirect_uri"))
		return
	}
	if !slices.Contains(app.cfg.RedirectURIs, redirectURI) {
		s.renderErrorPage(w, newAADError("invalid_request", 50011,
			"The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. "+
				"Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. "+
				"Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.", redirectURI, app.cfg.ClientID))
		return
	}
	state, mode := q.Get("state"), q.Get("response_mode")
	if mode != "" && mode != "query" && mode != "form_post" {
		s.redirectError(w, r, redirectURI, state, "", newAADError("invalid_request", 9002313,
			"Invalid request. Request is malformed or invalid. response_mode '%s' is not supported for response_type 'code'.", mode))
		return
	}
	if rt := q.Get("response_type"); rt != "code" {
		s.redirectError(w, r, redirectURI, state, mode, newAADError("unsupported_response_type", 700054,
			"response_type '%s' is not enabled for the application.", rt))
		return
	}
	scope := q.Get("scope")
	if scope == "" {
		s.redirectError(w, r, redirectURI, state, mode, missingParam("scope"))
		return
	}
	if _, e := s.parseScopes(scope, app.tenant.id); e != nil {
		s.redirectError(w, r, redirectURI, state, mode, e)
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if challenge != "" && method == "" {
		method = "plain"
	}
	if challenge != "" && method != "S256" && method != "plain" {
		s.redirectError(w, r, redirectURI, state, mode, newAADError("invalid_request", 9002313,
			"Invalid request. Request is malformed or invalid. code_challenge_method '%s' is not supported.", method))
		return
	}
	if challenge != "" && (len(challenge) < 43 || len(challenge) > 128) {
		s.redirectError(w, r, redirectURI, state, mode, newAADError("invalid_request", 501491, "Invalid size of Code_Challenge parameter."))
		return
	}
	prompt := q.Get("prompt")
	if prompt == "none" {
		s.redirectError(w, r, redirectURI, state, mode, newAADError("login_required", 50058,
			"A silent sign-in request was sent but no user is signed in."))
		return
	}
	id := randomToken(18)
	s.state.flows[id] = &signInFlow{app: app, tenantSeg: seg, redirectURI: redirectURI, scope: scope, state: state, responseMode: mode,
		challenge: challenge, method: method, loginHint: q.Get("login_hint"), prompt: prompt, nonce: q.Get("nonce"), expires: s.nowLocked().Add(flowLifetime)}
	s.renderPage(w, http.StatusOK, pageData{Title: "Sign in", AppName: app.cfg.DisplayName, Step: "signin",
		Action: r.URL.Path, Flow: id, Username: q.Get("login_hint")})
}

// serveSignIn takes the sign-in form, the MFA approval and the consent answer.
func (s *Server) serveSignIn(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.renderErrorPage(w, newAADError("invalid_request", 9002313, "Invalid request. Request is malformed or invalid."))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PostForm.Get("flow")
	fl := s.state.flows[id]
	if fl == nil || s.nowLocked().After(fl.expires) {
		delete(s.state.flows, id)
		s.renderErrorPage(w, newAADError("invalid_request", 50089, "Flow token expired - Authentication Failed. Have the user try signing-in again."))
		return
	}
	page := pageData{Title: "Sign in", AppName: fl.app.cfg.DisplayName, Action: r.URL.Path, Flow: id}
	switch r.PostForm.Get("step") {
	case "signin":
		name := strings.TrimSpace(r.PostForm.Get("loginfmt"))
		page.Step, page.Username = "signin", name
		u := findUserForApp(fl.app, name)
		if u == nil && fl.tenantSeg != "" {
			u = s.findUserLocked(name)
		}
		switch {
		case u == nil:
			page.Error, page.ErrorID = "AADSTS50034: This username may be incorrect. We couldn't find an account with that username.", "usernameError"
		case u.cfg.Shared || u.cfg.Password == "" || u.cfg.Password != r.PostForm.Get("passwd"):
			page.Error, page.ErrorID = "AADSTS50126: Your account or password is incorrect. If you don't remember your password, reset it now.", "passwordError"
		case u.cfg.AccountDisabled:
			page.Error, page.ErrorID = "AADSTS50057: Your account has been locked. Contact your support person to unlock it, then try again.", "usernameError"
		case u.tenant != fl.app.tenant:
			page.Error, page.ErrorID = fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.",
				fl.app.cfg.ClientID, u.tenant.id), "usernameError"
		}
		if page.Error != "" {
			s.renderPage(w, http.StatusOK, page)
			return
		}
		if u.cfg.ConditionalAccessBlock {
			delete(s.state.flows, id)
			e := newAADError("access_denied", 53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
			s.redirectError(w, r, fl.redirectURI, fl.state, fl.responseMode, e)
			return
		}
		fl.user = u
		if u.cfg.MFARequired || u.cfg.MFARegistrationRequired {
			page.Title, page.Step = "Approve sign in request", "mfa"
			s.renderPage(w, http.StatusOK, page)
			return
		}
		fl.mfaDone = true
	case "mfa":
		if fl.user == nil {
			s.renderErrorPage(w, newAADError("invalid_request", 9002313, "Invalid request. Sign in first."))
			return
		}
		fl.mfaDone = true
	case "consent":
		if fl.user == nil || !fl.mfaDone {
			s.renderErrorPage(w, newAADError("invalid_request", 9002313, "Invalid request. Sign in first."))
			return
		}
		if r.PostForm.Get("consent") != "accept" {
			delete(s.state.flows, id)
			s.redirectError(w, r, fl.redirectURI, fl.state, fl.responseMode, newAADError("access_denied", 65004,
				"User declined to consent to access the app."))
			return
		}
		s.recordConsentLocked(fl)
		fl.prompt = ""
	default:
		s.renderErrorPage(w, newAADError("invalid_request", 9002313, "Invalid request. Request is malformed or invalid."))
		return
	}
	if missing := s.missingConsentLocked(fl); len(missing) > 0 || fl.prompt == "consent" {
		if len(missing) == 0 {
			missing = strings.Fields(fl.scope)
		}
		page.Title, page.Step, page.Scopes = "Permissions requested", "consent", missing
		s.renderPage(w, http.StatusOK, page)
		return
	}
	delete(s.state.flows, id)
	code := "0.AXcA" + randomToken(64)
	s.state.codes[code] = &authCode{clientID: fl.app.cfg.ClientID, user: fl.user, redirectURI: fl.redirectURI, scopes: fl.scope,
		challenge: fl.challenge, method: fl.method, nonce: fl.nonce, expires: s.nowLocked().Add(s.opts.AuthCodeLifetime)}
	fields := map[string]string{"code": code, "session_state": NewGUID()}
	if fl.state != "" {
		fields["state"] = fl.state
	}
	s.redirectBack(w, r, fl.redirectURI, fl.responseMode, fields)
}

// missingConsentLocked lists the requested scopes the user has no consent for.
func (s *Server) missingConsentLocked(fl *signInFlow) []string {
	q, e := s.parseScopes(fl.scope, fl.app.tenant.id)
	if e != nil {
		return strings.Fields(fl.scope)
	}
	var missing []string
	for _, aud := range q.auds {
		for _, p := range q.perms[aud] {
			if _, e := s.grantedPermsLocked(fl.app, fl.user, aud, []string{p}); e != nil {
				missing = append(missing, aud+"/"+p)
			}
		}
	}
	return missing
}

// recordConsentLocked records the user's consent to every scope of the flow (".default"
// consents to every delegated permission the app requests for that API).
func (s *Server) recordConsentLocked(fl *signInFlow) {
	q, e := s.parseScopes(fl.scope, fl.app.tenant.id)
	if e != nil {
		return
	}
	key := strings.ToLower(fl.user.cfg.UPN)
	if fl.app.userConsent[key] == nil {
		fl.app.userConsent[key] = map[string]bool{}
	}
	for _, aud := range q.auds {
		for _, p := range q.perms[aud] {
			if p != ".default" {
				fl.app.userConsent[key][aud+"/"+p] = true
				continue
			}
			for _, sc := range fl.app.cfg.Scopes {
				if a, _ := s.splitScope(sc); a != "" && apiOf(a) == apiOf(aud) {
					fl.app.userConsent[key][sc] = true
				}
			}
		}
	}
}

// ConsentUser records that the user with upn consented to scopes for app, as if they had
// clicked Accept on the consent page.
func (a *App) ConsentUser(upn string, scopes ...string) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	key := strings.ToLower(upn)
	if a.userConsent[key] == nil {
		a.userConsent[key] = map[string]bool{}
	}
	for _, sc := range scopes {
		a.userConsent[key][sc] = true
	}
}
