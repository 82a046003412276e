package mstest

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// TokenError is the identity platform's error body (reference §1.7), all seven fields.
type TokenError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
	Suberror         string `json:"suberror,omitempty"`
}

// TokenResponse is the token endpoint's success body.
type TokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope,omitempty"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// Claims are the claims of an access token the stand-in issued.
type Claims struct {
	Audience  string   `json:"aud"`
	Issuer    string   `json:"iss"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expires   int64    `json:"exp"`
	TenantID  string   `json:"tid"`
	AppID     string   `json:"appid"`
	AZP       string   `json:"azp,omitempty"`
	AppName   string   `json:"app_displayname,omitempty"`
	ObjectID  string   `json:"oid"`
	Subject   string   `json:"sub"`
	Roles     []string `json:"roles,omitempty"`
	Scope     string   `json:"scp,omitempty"`
	UPN       string   `json:"upn,omitempty"`
	Name      string   `json:"name,omitempty"`
	IDType    string   `json:"idtyp,omitempty"` // "app" for app-only tokens, "user" otherwise
	TokenID   string   `json:"uti"`
	Version   string   `json:"ver"`
}

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	clientID string
	user     *User
	scopes   string // the scope parameter of the original grant
	issued   time.Time
	lastUsed time.Time
	revoked  bool
}

// authCode is an authorization code waiting to be redeemed.
type authCode struct {
	clientID    string
	user        *User
	redirectURI string
	scopes      string
	challenge   string
	method      string
	nonce       string // the authorize request's nonce, for the id token
	expires     time.Time
	used        bool
}

// aadError is an identity platform error before it is written.
type aadError struct {
	status   int    // 400 when 0; 401 for invalid_client
	err      string // OAuth error class
	code     int    // AADSTS number
	msg      string // text after "AADSTSnnnn: "
	suberror string
}

func (e *aadError) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.code, e.msg) }

func newAADError(class string, code int, format string, args ...any) *aadError {
	e := &aadError{err: class, code: code, msg: fmt.Sprintf(format, args...)}
	if class == "invalid_client" {
		e.status = http.StatusUnauthorized
	}
	return e
}

// aadTimestamp is the timestamp format of identity platform errors.
const aadTimestamp = "2006-01-02 15:04:05Z"

// writeTokenError writes e with all seven fields.
func (s *Server) writeTokenError(w http.ResponseWriter, r *http.Request, e *aadError) {
	now := s.now().UTC()
	trace := NewGUID()
	corr := r.Header.Get("client-request-id")
	if !guidPattern.MatchString(corr) {
		corr = NewGUID()
	}
	ts := now.Format(aadTimestamp)
	body := TokenError{
		Error: e.err,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.code, e.msg, trace, corr, ts),
		ErrorCodes:    []int{e.code},
		Timestamp:     ts,
		TraceID:       trace,
		CorrelationID: corr,
		ErrorURI:      fmt.Sprintf("%s/error?code=%d", s.loginURL, e.code),
		Suberror:      e.suberror,
	}
	status := e.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	s.log.Debug("mstest: token error", "code", e.code, "error", e.err)
	writeJSONStatus(w, status, body)
}

func writeJSONStatus(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) loginHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.serveToken)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		s.writeTokenError(w, r, newAADError("invalid_request", 900561,
			"The endpoint only accepts POST, OPTIONS requests. Received a GET request."))
	})
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", s.serveAuthorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/authorize", s.serveSignIn)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.serveKeys)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.serveOpenIDConfiguration)
	mux.HandleFunc("POST /introspect", s.serveIntrospect)
	mux.HandleFunc("GET /introspect", s.serveIntrospect)
	mux.HandleFunc("GET /error", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintf(w, "mstest: local stand-in of Microsoft Entra ID. Error code AADSTS%s: see shared/reference/ms365-protocol.md §1.8.\n",
			r.URL.Query().Get("code"))
	})
	return mux
}

// resolveTenant finds the tenant a path segment names. special is "organizations",
// "common" or "consumers" (t is nil then).
func (s *Server) resolveTenantLocked(seg string) (t *Tenant, special string, e *aadError) {
	lower := strings.ToLower(seg)
	switch lower {
	case "organizations", "common", "consumers":
		return nil, lower, nil
	}
	if guidPattern.MatchString(seg) {
		if t := s.state.tenants[lower]; t != nil {
			return t, "", nil
		}
	} else if domainPattern.MatchString(seg) {
		if t := s.state.domains[lower]; t != nil {
			return t, "", nil
		}
	} else {
		return nil, "", newAADError("invalid_request", 900023,
			"Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain.", seg)
	}
	if cloud := s.state.otherCloud[lower]; cloud != "" {
		return nil, "", newAADError("invalid_request", 90038,
			"Tenant '%s' request is being redirected to the National Cloud '%s'. Current cloud instance 'Prod' does not federate with '%s'.", seg, cloud, cloud)
	}
	return nil, "", newAADError("invalid_request", 90002,
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. "+
			"Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", seg)
}

// lookupAppLocked finds the app with clientID as seen from tenant t (nil for the
// organizations/common endpoints: any tenant).
func (s *Server) lookupAppLocked(t *Tenant, clientID, tenantSeg string) (*App, *aadError) {
	a := s.state.apps[strings.ToLower(clientID)]
	if a == nil || (t != nil && a.tenant != t) {
		return nil, newAADError("unauthorized_client", 700016,
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been "+
				"installed by the administrator of the tenant or consented to by any user in the tenant. "+
				"You may have sent your authentication request to the wrong tenant.", clientID, tenantSeg)
	}
	if a.cfg.Disabled {
		return nil, newAADError("unauthorized_client", 7000112, "Application '%s'(%s) is disabled.", a.cfg.ClientID, a.cfg.DisplayName)
	}
	return a, nil
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.writeTokenError(w, r, newAADError("invalid_request", 9002313, "Invalid request. Request is malformed or invalid."))
		return
	}
	f := r.PostForm
	clientID := f.Get("client_id")
	if u, _, ok := r.BasicAuth(); ok && clientID == "" {
		clientID = u
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.graph.tokenRequests[strings.ToLower(clientID)]++
	if s.state.graph.faults.tokenFaults > 0 {
		s.state.graph.faults.tokenFaults--
		w.Header().Set("Retry-After", "1")
		s.writeTokenError(w, r, &aadError{status: http.StatusServiceUnavailable, err: "temporarily_unavailable", code: 90033,
			msg: "A transient error has occurred. Please try again."})
		return
	}
	resp, e := s.tokenLocked(r, f, clientID)
	if e != nil {
		s.writeTokenError(w, r, e)
		return
	}
	writeJSONStatus(w, http.StatusOK, resp)
}

// tokenLocked runs one token request.
func (s *Server) tokenLocked(r *http.Request, f map[string][]string, clientID string) (*TokenResponse, *aadError) {
	get := func(k string) string {
		if v := f[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	seg := r.PathValue("tenant")
	t, special, e := s.resolveTenantLocked(seg)
	if e != nil {
		return nil, e
	}
	grant := get("grant_type")
	if grant == "" {
		return nil, missingParam("grant_type")
	}
	switch grant {
	case "client_credentials", "password", "authorization_code", "refresh_token":
	default:
		return nil, newAADError("unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", grant)
	}
	if clientID == "" {
		return nil, missingParam("client_id")
	}
	if special == "consumers" || (special == "common" && (grant == "client_credentials" || grant == "password")) ||
		(special == "organizations" && grant == "client_credentials") {
		return nil, newAADError("invalid_request", 9001023,
			"The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.")
	}
	app, e := s.lookupAppLocked(t, clientID, seg)
	if e != nil {
		return nil, e
	}
	delegated := grant != "client_credentials"
	if e := s.authenticateClientLocked(r, app, get, seg, delegated); e != nil {
		return nil, e
	}
	switch grant {
	case "client_credentials":
		return s.clientCredentialsLocked(app, get("scope"))
	case "password":
		return s.passwordLocked(app, get("username"), get("password"), get("scope"))
	case "authorization_code":
		return s.authCodeLocked(app, get("code"), get("redirect_uri"), get("code_verifier"), get("scope"))
	default:
		return s.refreshLocked(app, get("refresh_token"), get("scope"))
	}
}

func missingParam(name string) *aadError {
	return newAADError("invalid_request", 900144, "The request body must contain the following parameter: '%s'.", name)
}

// clientAssertionType is the only client_assertion_type Entra ID takes.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionSkew is how far a client assertion's times may be off (Entra allows some skew).
const assertionSkew = 5 * time.Minute

// authenticateClientLocked checks the client secret or assertion. delegated grants of a
// public client need none and must send none.
func (s *Server) authenticateClientLocked(r *http.Request, app *App, get func(string) string, seg string, delegated bool) *aadError {
	secretValue := get("client_secret")
	if _, p, ok := r.BasicAuth(); ok && secretValue == "" {
		secretValue = p
	}
	assertion := get("client_assertion")
	if delegated && app.cfg.PublicClient {
		if secretValue != "" || assertion != "" {
			return newAADError("invalid_client", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
		}
		return nil
	}
	switch {
	case secretValue != "":
		return s.checkSecretLocked(app, secretValue)
	case assertion != "":
		if typ := get("client_assertion_type"); typ != clientAssertionType {
			return newAADError("invalid_request", 9002313, "Invalid request. Request is malformed or invalid. client_assertion_type '%s' is not supported.", typ)
		}
		return s.checkAssertionLocked(app, assertion, seg)
	default:
		return newAADError("invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
}

func (s *Server) checkSecretLocked(app *App, value string) *aadError {
	now := s.nowLocked()
	for _, sec := range app.secrets {
		if subtle.ConstantTimeCompare([]byte(sec.value), []byte(value)) == 1 {
			if !now.Before(sec.expires) {
				return newAADError("invalid_client", 7000222,
					"The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: "+
						"https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
					app.cfg.ClientID)
			}
			return nil
		}
	}
	return newAADError("invalid_client", 7000215,
		"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, "+
			"for a secret added to app '%s'.", app.cfg.ClientID)
}

// assertionClaims are the claims of a client assertion (RFC 7523).
type assertionClaims struct {
	Aud any    `json:"aud"` // a string or an array
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
	Nbf int64  `json:"nbf"`
	Jti string `json:"jti"`
}

func (s *Server) checkAssertionLocked(app *App, assertion, seg string) *aadError {
	p, err := splitJWT(assertion)
	if err != nil {
		return newAADError("invalid_client", 50027, "JWT token is invalid or malformed.")
	}
	var cert *certRef
	x5t, _ := p.header["x5t"].(string)
	x5t256, _ := p.header["x5t#S256"].(string)
	for _, c := range app.certs {
		s1 := sha1.Sum(c.Raw)
		s256 := sha256.Sum256(c.Raw)
		if (x5t != "" && x5t == b64.EncodeToString(s1[:])) || (x5t256 != "" && x5t256 == b64.EncodeToString(s256[:])) {
			cert = &certRef{pub: c.PublicKey, notAfter: c.NotAfter, thumb: b64.EncodeToString(s1[:])}
			break
		}
	}
	if cert == nil {
		return newAADError("invalid_client", 700027,
			"The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., "+
				"Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.]",
			x5t, app.cfg.ClientID)
	}
	pub, ok := cert.pub.(*rsa.PublicKey)
	if !ok {
		return newAADError("invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - The key is not an RSA key.]")
	}
	if err := p.verify(pub); err != nil {
		return newAADError("invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - %s.]", err)
	}
	now := s.nowLocked()
	if now.After(cert.notAfter) {
		return newAADError("invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '%s']", cert.thumb)
	}
	var c assertionClaims
	if err := json.Unmarshal(p.claims, &c); err != nil {
		return newAADError("invalid_client", 50027, "JWT token is invalid or malformed.")
	}
	if !strings.EqualFold(c.Iss, app.cfg.ClientID) || !strings.EqualFold(c.Sub, app.cfg.ClientID) {
		return newAADError("invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .")
	}
	exp, nbf := time.Unix(c.Exp, 0), time.Unix(c.Nbf, 0)
	if c.Exp == 0 || now.After(exp.Add(assertionSkew)) || (c.Nbf != 0 && now.Add(assertionSkew).Before(nbf)) {
		return newAADError("invalid_client", 700024,
			"Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
			now.UTC().Format("2006-01-02T15:04:05.0000000Z"), nbf.UTC().Format("2006-01-02T15:04:05.0000000Z"), exp.UTC().Format("2006-01-02T15:04:05.0000000Z"))
	}
	var auds []string
	switch v := c.Aud.(type) {
	case string:
		auds = []string{v}
	case []any:
		for _, x := range v {
			if str, ok := x.(string); ok {
				auds = append(auds, str)
			}
		}
	}
	valid := []string{s.TokenURL(seg), s.TokenURL(app.tenant.id), s.loginURL + "/" + app.tenant.id + "/v2.0"}
	for _, d := range app.tenant.domains {
		valid = append(valid, s.TokenURL(d))
	}
	for _, a := range auds {
		for _, v := range valid {
			if strings.EqualFold(a, v) {
				return nil
			}
		}
	}
	// (unverified code: Entra's answer to a wrong audience is not in the reference.)
	return newAADError("invalid_client", 50012, "Client assertion audience claim does not match Realm issuer. Expected the token endpoint '%s'.", s.TokenURL(seg))
}

type certRef struct {
	pub      any
	notAfter time.Time
	thumb    string
}

// Resource kinds of a scope.
const (
	apiGraph    = "graph"
	apiExchange = "exchange"
)

// scopeReq is a parsed scope parameter.
type scopeReq struct {
	oidc map[string]bool // openid, profile, email, offline_access
	// resources in order of first appearance: audience -> permissions (short names, or
	// ".default").
	auds  []string
	perms map[string][]string
}

var oidcScopes = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true}

// graphAppID is Microsoft Graph's application id, usable as its resource name.
const graphAppID = "00000003-0000-0000-c000-000000000000"

// canonicalResource maps a resource name to the audience tokens carry; "" if unknown.
func (s *Server) canonicalResource(res string) string {
	res = strings.TrimSuffix(res, "/")
	switch {
	case strings.EqualFold(res, GraphAudience), strings.EqualFold(res, s.graphURL), strings.EqualFold(res, graphAppID):
		return GraphAudience
	case strings.EqualFold(res, ExchangeAudience):
		return ExchangeAudience
	case strings.EqualFold(res, OutlookAudience):
		return OutlookAudience
	case s.spns[strings.ToLower(res)]:
		return strings.ToLower(res)
	}
	return ""
}

func apiOf(aud string) string {
	if aud == GraphAudience {
		return apiGraph
	}
	return apiExchange
}

// parseScopes parses a scope parameter. A bare permission ("Mail.Read") is Graph's.
func (s *Server) parseScopes(raw, tenantName string) (scopeReq, *aadError) {
	q := scopeReq{oidc: map[string]bool{}, perms: map[string][]string{}}
	for _, sc := range strings.Fields(raw) {
		if oidcScopes[strings.ToLower(sc)] {
			q.oidc[strings.ToLower(sc)] = true
			continue
		}
		res, perm := GraphAudience, sc
		if i := strings.LastIndexByte(sc, '/'); i >= 0 {
			res, perm = sc[:i], sc[i+1:]
			if !strings.Contains(res, "://") && !guidPattern.MatchString(res) {
				return q, newAADError("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", sc)
			}
		}
		aud := s.canonicalResource(res)
		if aud == "" {
			return q, newAADError("invalid_resource", 500011,
				"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator "+
					"of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", res, tenantName)
		}
		if perm == "" {
			return q, newAADError("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", sc)
		}
		if _, ok := q.perms[aud]; !ok {
			q.auds = append(q.auds, aud)
		}
		if !slices.ContainsFunc(q.perms[aud], func(p string) bool { return strings.EqualFold(p, perm) }) {
			q.perms[aud] = append(q.perms[aud], perm)
		}
	}
	return q, nil
}

// single returns the one resource of q, or AADSTS700022 when it names several.
func (q scopeReq) single(raw string) (string, *aadError) {
	if len(q.auds) > 1 {
		return "", newAADError("invalid_scope", 700022,
			"The provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", raw)
	}
	if len(q.auds) == 0 {
		return GraphAudience, nil
	}
	return q.auds[0], nil
}

// exchangeRoles are the application permissions of the Office 365 Exchange Online API; the
// others are Graph's.
var exchangeRoles = map[string]bool{RoleIMAPAccessAsApp: true, RolePOPAccessAsApp: true, RoleSMTPSendAsApp: true, "full_access_as_app": true}

func (s *Server) clientCredentialsLocked(app *App, scope string) (*TokenResponse, *aadError) {
	if scope == "" {
		return nil, missingParam("scope")
	}
	q, e := s.parseScopes(scope, app.tenant.id)
	if e != nil {
		return nil, e
	}
	if len(q.oidc) > 0 && len(q.auds) == 0 {
		return nil, newAADError("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", scope)
	}
	aud, e := q.single(scope)
	if e != nil {
		return nil, e
	}
	perms := q.perms[aud]
	if len(perms) != 1 || perms[0] != ".default" || len(q.oidc) > 0 {
		return nil, newAADError("invalid_scope", 1002012,
			"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)
	}
	var roles []string
	if app.cfg.AdminConsent {
		for _, r := range app.cfg.Roles {
			if exchangeRoles[r] == (apiOf(aud) == apiExchange) {
				roles = append(roles, r)
			}
		}
	}
	now := s.nowLocked()
	c := Claims{
		Audience: aud, TenantID: app.tenant.id, AppID: app.cfg.ClientID, AppName: app.cfg.DisplayName,
		ObjectID: app.cfg.ServicePrincipalID, Subject: app.cfg.ServicePrincipalID, Roles: roles, IDType: "app",
	}
	at, e := s.issueAccessLocked(c, now)
	if e != nil {
		return nil, e
	}
	secs := int(s.opts.AccessTokenLifetime / time.Second)
	return &TokenResponse{TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: at}, nil
}

// issueAccessLocked completes and signs an access token.
func (s *Server) issueAccessLocked(c Claims, now time.Time) (string, *aadError) {
	c.Issuer = "https://sts.windows.net/" + c.TenantID + "/"
	c.IssuedAt = now.Unix()
	c.NotBefore = now.Unix()
	c.Expires = now.Add(s.opts.AccessTokenLifetime).Unix()
	c.TokenID = randomToken(16)
	c.Version = "1.0"
	tok, err := signJWT(s.key, map[string]string{"kid": s.kid, "x5t": s.kid}, c)
	if err != nil {
		return "", &aadError{status: http.StatusInternalServerError, err: "server_error", code: 90033, msg: err.Error()}
	}
	s.state.issued[c.TokenID] = now
	return tok, nil
}

// checkUserSignInLocked refuses a sign-in of u for account reasons (not the password).
func checkUserSignIn(u *User) *aadError {
	switch {
	case u.cfg.AccountDisabled:
		return newAADError("invalid_grant", 50057, "The user account is disabled. The account has been disabled by an administrator.")
	case u.cfg.PasswordExpired:
		return newAADError("invalid_grant", 50055, "The password is expired.")
	case u.cfg.ConditionalAccessBlock:
		return newAADError("invalid_grant", 53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
	}
	return nil
}

// findUserForAppLocked finds a user by UPN in the app's tenant.
func findUserForApp(app *App, upn string) *User {
	return app.tenant.users[strings.ToLower(strings.TrimSpace(upn))]
}

func (s *Server) passwordLocked(app *App, username, password, scope string) (*TokenResponse, *aadError) {
	if username == "" {
		return nil, missingParam("username")
	}
	if password == "" {
		return nil, missingParam("password")
	}
	if scope == "" {
		return nil, missingParam("scope")
	}
	u := findUserForApp(app, username)
	if u == nil {
		return nil, newAADError("invalid_grant", 50034,
			"The user account %s does not exist in the %s directory. To sign into this application, the account must be added to the directory.", username, app.tenant.id)
	}
	if u.cfg.Shared || u.cfg.Password == "" || subtle.ConstantTimeCompare([]byte(u.cfg.Password), []byte(password)) != 1 {
		return nil, newAADError("invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
	}
	if e := checkUserSignIn(u); e != nil {
		return nil, e
	}
	q, e := s.parseScopes(scope, app.tenant.id)
	if e != nil {
		return nil, e
	}
	aud, e := q.single(scope)
	if e != nil {
		return nil, e
	}
	if u.cfg.MFARegistrationRequired {
		e := newAADError("invalid_grant", 50079,
			"Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '%s'.", aud)
		e.suberror = "basic_action"
		return nil, e
	}
	if u.cfg.MFARequired {
		e := newAADError("invalid_grant", 50076,
			"Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'.", aud)
		e.suberror = "basic_action"
		return nil, e
	}
	return s.delegatedTokenLocked(app, u, q, aud, scope, nil, "")
}

// grantedPermsLocked returns the permissions of aud that u may use through app, for the
// requested perms (".default" = everything consented for that API), or AADSTS65001.
func (s *Server) grantedPermsLocked(app *App, u *User, aud string, perms []string) ([]string, *aadError) {
	api := apiOf(aud)
	consented := map[string]string{} // lower-case short name -> as configured
	if app.cfg.AdminConsent {
		for _, sc := range app.cfg.Scopes {
			if a, p := s.splitScope(sc); a != "" && apiOf(a) == api {
				consented[strings.ToLower(p)] = p
			}
		}
	}
	for key := range app.userConsent[strings.ToLower(u.cfg.UPN)] {
		if a, p := s.splitScope(key); a != "" && apiOf(a) == api {
			consented[strings.ToLower(p)] = p
		}
	}
	var out []string
	for _, p := range perms {
		if p == ".default" {
			for _, v := range consented {
				out = append(out, v)
			}
			if len(consented) == 0 {
				return nil, s.consentError(app)
			}
			continue
		}
		v, ok := consented[strings.ToLower(p)]
		if !ok {
			return nil, s.consentError(app)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (s *Server) consentError(app *App) *aadError {
	e := newAADError("invalid_grant", 65001,
		"The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.",
		app.cfg.ClientID, app.cfg.DisplayName)
	e.suberror = "consent_required"
	return e
}

// splitScope splits a full scope into canonical audience and permission ("" if unknown).
func (s *Server) splitScope(sc string) (aud, perm string) {
	i := strings.LastIndexByte(sc, '/')
	if i < 0 {
		if oidcScopes[strings.ToLower(sc)] {
			return "", sc
		}
		return GraphAudience, sc
	}
	return s.canonicalResource(sc[:i]), sc[i+1:]
}

// delegatedTokenLocked issues a delegated access token for aud (plus a refresh token with
// offline_access, an id token with openid). old is the refresh grant being redeemed.
func (s *Server) delegatedTokenLocked(app *App, u *User, q scopeReq, aud, scopeParam string, old *refreshGrant, nonce string) (*TokenResponse, *aadError) {
	var granted []string
	if len(q.auds) == 0 && q.oidc["openid"] {
		// A sign-in only (openid profile email): Entra ID asks no consent and issues an
		// access token for Graph's User.Read beside the id token.
		granted = []string{"User.Read"}
	} else {
		perms := q.perms[aud]
		if len(perms) == 0 {
			perms = []string{".default"}
		}
		if _, e := s.grantedPermsLocked(app, u, aud, perms); e != nil {
			return nil, e
		}
		// Every scope consented for the API goes into scp and the answer's scope, not only
		// the requested ones, as Entra ID does (ms365-protocol.md §8.6).
		var e *aadError
		granted, e = s.grantedPermsLocked(app, u, aud, []string{".default"})
		if e != nil {
			return nil, e
		}
	}
	now := s.nowLocked()
	c := Claims{
		Audience: aud, TenantID: app.tenant.id, AppID: app.cfg.ClientID, AZP: app.cfg.ClientID, AppName: app.cfg.DisplayName,
		ObjectID: u.cfg.ObjectID, Subject: u.cfg.ObjectID, Scope: strings.Join(granted, " "), UPN: u.cfg.UPN, Name: u.cfg.DisplayName,
		IDType: "user",
	}
	at, e := s.issueAccessLocked(c, now)
	if e != nil {
		return nil, e
	}
	full := make([]string, len(granted))
	for i, p := range granted {
		full[i] = aud + "/" + p
	}
	secs := int(s.opts.AccessTokenLifetime / time.Second)
	resp := &TokenResponse{TokenType: "Bearer", Scope: strings.Join(full, " "), ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: at}
	if q.oidc["offline_access"] || (old != nil && old.scopes != "") {
		rt := "0.AXcA" + randomToken(48)
		scopes := scopeParam
		if old != nil {
			scopes = old.scopes
		}
		s.state.refresh[rt] = &refreshGrant{clientID: app.cfg.ClientID, user: u, scopes: scopes, issued: now, lastUsed: now}
		resp.RefreshToken = rt
	}
	if q.oidc["openid"] {
		idt, e := s.idTokenLocked(app, u, q, nonce, now)
		if e != nil {
			return nil, e
		}
		resp.IDToken = idt
	}
	return resp, nil
}

func (s *Server) authCodeLocked(app *App, code, redirectURI, verifier, scope string) (*TokenResponse, *aadError) {
	if code == "" {
		return nil, missingParam("code")
	}
	if redirectURI == "" {
		return nil, missingParam("redirect_uri")
	}
	ac := s.state.codes[code]
	if ac == nil || ac.clientID != app.cfg.ClientID {
		return nil, newAADError("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid.")
	}
	if ac.used {
		return nil, newAADError("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	}
	now := s.nowLocked()
	if now.After(ac.expires) {
		return nil, newAADError("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	}
	if redirectURI != ac.redirectURI {
		// (unverified code number)
		return nil, newAADError("invalid_grant", 500112, "The reply address '%s' does not match the reply address '%s' provided when requesting Authorization code.", redirectURI, ac.redirectURI)
	}
	if ac.challenge != "" {
		want := verifier
		if ac.method == "S256" {
			sum := sha256.Sum256([]byte(verifier))
			want = b64.EncodeToString(sum[:])
		}
		if verifier == "" || subtle.ConstantTimeCompare([]byte(want), []byte(ac.challenge)) != 1 {
			return nil, newAADError("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
		}
	}
	ac.used = true
	u := ac.user
	if e := checkUserSignIn(u); e != nil {
		return nil, e
	}
	if scope == "" {
		scope = ac.scopes
	}
	q, e := s.parseScopes(scope, app.tenant.id)
	if e != nil {
		return nil, e
	}
	aud, e := q.single(scope)
	if e != nil {
		return nil, e
	}
	// offline_access asked at authorize counts for the redemption too.
	codeQ, _ := s.parseScopes(ac.scopes, app.tenant.id)
	for k := range codeQ.oidc {
		q.oidc[k] = true
	}
	return s.delegatedTokenLocked(app, u, q, aud, ac.scopes, nil, ac.nonce)
}

func (s *Server) refreshLocked(app *App, token, scope string) (*TokenResponse, *aadError) {
	if token == "" {
		return nil, missingParam("refresh_token")
	}
	g := s.state.refresh[token]
	if g == nil || g.clientID != app.cfg.ClientID {
		return nil, newAADError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid. The refresh token is not valid.")
	}
	now := s.nowLocked()
	u := g.user
	if g.revoked || g.issued.Before(u.sessionsValidFrom) {
		return nil, newAADError("invalid_grant", 50173,
			"The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. "+
				"The grant was issued on '%s' and the TokensValidFrom date (before which tokens are not valid) for this user is '%s'.",
			g.issued.UTC().Format("2006-01-02T15:04:05.0000000Z"), u.sessionsValidFrom.UTC().Format("2006-01-02T15:04:05.0000000Z"))
	}
	if now.Sub(g.lastUsed) > s.opts.RefreshTokenInactivity {
		return nil, newAADError("invalid_grant", 700082,
			"The refresh token has expired due to inactivity. The token was issued on %s and was inactive for %s.",
			g.issued.UTC().Format("2006-01-02T15:04:05.0000000Z"), s.opts.RefreshTokenInactivity)
	}
	if e := checkUserSignIn(u); e != nil {
		return nil, e
	}
	if scope == "" {
		scope = g.scopes
	}
	q, e := s.parseScopes(scope, app.tenant.id)
	if e != nil {
		return nil, e
	}
	aud, e := q.single(scope)
	if e != nil {
		return nil, e
	}
	g.lastUsed = now
	return s.delegatedTokenLocked(app, u, q, aud, scope, g, "")
}
