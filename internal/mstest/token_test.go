package mstest

import (
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestClientCredentialsSecret(t *testing.T) {
	f := newFixture(t, Options{})
	// golang.org/x/oauth2, as postroom's credential package uses it; tenant by domain.
	cc := clientcredentials.Config{ClientID: f.app.ClientID(), ClientSecret: f.secret,
		TokenURL: f.s.TokenURL("contoso.example"), Scopes: []string{GraphAudience + "/.default"},
		AuthStyle: oauth2.AuthStyleInParams}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Errorf("client_credentials returned a refresh token")
	}
	if ext, _ := tok.Extra("ext_expires_in").(float64); ext != 3599 {
		t.Errorf("ext_expires_in %v, want 3599", tok.Extra("ext_expires_in"))
	}
	if d := time.Until(tok.Expiry); d < 3590*time.Second || d > 3600*time.Second {
		t.Errorf("expiry in %s, want 3599 s", d)
	}
	c, err := f.s.ParseToken(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audience != GraphAudience || c.TenantID != testTenantID || c.AppID != f.app.ClientID() || c.IDType != "app" {
		t.Errorf("claims %+v", c)
	}
	if !slices.Equal(c.Roles, []string{RoleMailReadWrite, RoleMailSend}) {
		t.Errorf("Graph token roles %v, want Mail.ReadWrite, Mail.Send", c.Roles)
	}

	// The Exchange resource gets the Exchange roles only; HTTP Basic client auth works too.
	req, _ := http.NewRequest(http.MethodPost, f.s.TokenURL(testTenantID), strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "scope": {ExchangeAudience + "/.default"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(f.app.ClientID(), f.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("basic auth: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	c, _ = f.s.ParseToken(tr.AccessToken)
	if c.Audience != ExchangeAudience || !slices.Equal(c.Roles, []string{RoleIMAPAccessAsApp, RoleSMTPSendAsApp}) {
		t.Errorf("Exchange token aud %s roles %v", c.Audience, c.Roles)
	}
	if f.s.TokenRequests(f.app.ClientID()) != 2 {
		t.Errorf("TokenRequests %d, want 2", f.s.TokenRequests(f.app.ClientID()))
	}
}

func TestClientCredentialsWithoutConsentHasNoRoles(t *testing.T) {
	f := newFixture(t, Options{})
	f.app.SetAdminConsent(false)
	c, err := f.s.ParseToken(f.appToken(t, GraphAudience+"/.default"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Roles) != 0 {
		t.Errorf("roles %v without admin consent", c.Roles)
	}
}

func TestTokenErrorsOnTheWire(t *testing.T) {
	f := newFixture(t, Options{})
	expired := "expired~" + randomToken(10)
	f.app.AddSecret(expired, time.Now().Add(-time.Hour))
	secretID := f.app.AddSecret("other~"+randomToken(10), time.Now().Add(time.Hour))
	disabled, _ := f.tenant.AddApp(AppConfig{Disabled: true})
	disabled.AddSecret("d", time.Now().Add(time.Hour))
	public, _ := f.tenant.AddApp(AppConfig{PublicClient: true, Scopes: []string{ScopeIMAP}, AdminConsent: true})
	f.s.AddOtherCloudTenant("7d2c1e0a-5b3f-4c8e-9a61-2f4e8b7c9d10", CloudUSGov)
	cc := func(client, secret, scope string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret}, "scope": {scope}}
	}
	id := f.app.ClientID()
	graph := GraphAudience + "/.default"
	for _, tc := range []struct {
		name, tenant string
		form         url.Values
		status       int
		err          string
		code         int
	}{
		{"unknown tenant", "0b5a7c3e-1111-2222-3333-444444444444", cc(id, f.secret, graph), 400, "invalid_request", 90002},
		{"unknown domain", "fabrikam.example", cc(id, f.secret, graph), 400, "invalid_request", 90002},
		{"tenant of the US Government cloud", "7d2c1e0a-5b3f-4c8e-9a61-2f4e8b7c9d10", cc(id, f.secret, graph), 400, "invalid_request", 90038},
		{"malformed tenant", "not a tenant!", cc(id, f.secret, graph), 400, "invalid_request", 900023},
		{"wrong secret", testTenantID, cc(id, "wrong", graph), 401, "invalid_client", 7000215},
		{"secret id instead of value", testTenantID, cc(id, secretID, graph), 401, "invalid_client", 7000215},
		{"expired secret", testTenantID, cc(id, expired, graph), 401, "invalid_client", 7000222},
		{"unknown client", testTenantID, cc("99999999-2222-3333-4444-555555555555", f.secret, graph), 400, "unauthorized_client", 700016},
		{"disabled app", testTenantID, cc(disabled.ClientID(), "d", graph), 400, "unauthorized_client", 7000112},
		{"no secret", testTenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "scope": {graph}}, 401, "invalid_client", 7000218},
		{"no grant_type", testTenantID, url.Values{"client_id": {id}}, 400, "invalid_request", 900144},
		{"no client_id", testTenantID, url.Values{"grant_type": {"client_credentials"}}, 400, "invalid_request", 900144},
		{"unsupported grant", testTenantID, url.Values{"grant_type": {"device_code"}, "client_id": {id}}, 400, "unsupported_grant_type", 70003},
		{"two resources", testTenantID, cc(id, f.secret, graph+" "+ExchangeAudience+"/.default"), 400, "invalid_scope", 700022},
		{"named permission", testTenantID, cc(id, f.secret, GraphAudience+"/Mail.Read"), 400, "invalid_scope", 1002012},
		{"unknown resource", testTenantID, cc(id, f.secret, "https://mail.example.org/.default"), 400, "invalid_resource", 500011},
		{"client credentials on common", "common", cc(id, f.secret, graph), 400, "invalid_request", 9001023},
		{"client credentials on organizations", "organizations", cc(id, f.secret, graph), 400, "invalid_request", 9001023},
		{"public client sends a secret", testTenantID, url.Values{"grant_type": {"password"}, "client_id": {public.ClientID()},
			"client_secret": {"x"}, "username": {testUser}, "password": {testPassword}, "scope": {ScopeIMAP}}, 401, "invalid_client", 700025},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, f.s.TokenURL(tc.tenant), tc.form)
			wantTokenError(t, status, body, tc.status, tc.err, tc.code)
		})
	}
	t.Run("GET refused", func(t *testing.T) {
		resp, err := http.Get(f.s.TokenURL(testTenantID) + "?grant_type=client_credentials")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		wantTokenError(t, resp.StatusCode, b, 400, "invalid_request", 900561)
	})
	t.Run("correlation id echoed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, f.s.TokenURL(testTenantID), strings.NewReader(cc(id, "wrong", graph).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("client-request-id", "7c1d3f5a-0b1e-4a52-9d3c-1f2e3d4c5b6a")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e TokenError
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.CorrelationID != "7c1d3f5a-0b1e-4a52-9d3c-1f2e3d4c5b6a" {
			t.Errorf("correlation_id %q", e.CorrelationID)
		}
	})
}

func TestSecretRotationAndExpiry(t *testing.T) {
	f := newFixture(t, Options{})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {f.app.ClientID()}, "client_secret": {f.secret},
		"scope": {GraphAudience + "/.default"}}
	f.app.ExpireSecret(f.secret)
	status, body := post(t, f.s.TokenURL(testTenantID), form)
	wantTokenError(t, status, body, 401, "invalid_client", 7000222)
	f.app.RemoveSecret(f.secret)
	status, body = post(t, f.s.TokenURL(testTenantID), form)
	wantTokenError(t, status, body, 401, "invalid_client", 7000215)

	next := "next~" + randomToken(10)
	f.app.AddSecret(next, time.Now().Add(48*time.Hour))
	form.Set("client_secret", next)
	if status, body := post(t, f.s.TokenURL(testTenantID), form); status != 200 {
		t.Fatalf("new secret: %d %s", status, body)
	}
	// Two days later the new secret has expired by the server's clock.
	f.s.Advance(49 * time.Hour)
	status, body = post(t, f.s.TokenURL(testTenantID), form)
	wantTokenError(t, status, body, 401, "invalid_client", 7000222)
}

// assertion signs a client assertion like postroom's credential package does.
func assertion(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey, clientID, aud string, now time.Time, useS256 bool) string {
	t.Helper()
	h := map[string]string{}
	if useS256 {
		s := sha256.Sum256(cert.Raw)
		h["x5t#S256"] = b64.EncodeToString(s[:])
	} else {
		s := sha1.Sum(cert.Raw)
		h["x5t"] = b64.EncodeToString(s[:])
	}
	tok, err := signJWT(key, h, map[string]any{"aud": aud, "iss": clientID, "sub": clientID, "jti": randomToken(8),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestClientCredentialsCertificate(t *testing.T) {
	f := newFixture(t, Options{})
	cert, key, err := NewCertificate("postroom", time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	f.app.AddCertificate(cert)
	other, otherKey, _ := NewCertificate("stranger", time.Now().Add(24*time.Hour))
	old, oldKey, _ := NewCertificate("old", time.Now().Add(48*time.Hour))
	f.app.AddCertificate(old)
	id := f.app.ClientID()
	tokenURL := f.s.TokenURL(testTenantID)
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "scope": {GraphAudience + "/.default"},
			"client_assertion_type": {clientAssertionType}, "client_assertion": {a}}
	}
	for _, s256 := range []bool{false, true} {
		status, body := post(t, tokenURL, form(assertion(t, cert, key, id, tokenURL, time.Now(), s256)))
		if status != 200 {
			t.Fatalf("assertion (x5t#S256 %v): %d %s", s256, status, body)
		}
	}
	// aud may name the tenant by domain when the request does.
	if status, body := post(t, f.s.TokenURL("contoso.example"), form(assertion(t, cert, key, id, f.s.TokenURL("contoso.example"), time.Now(), false))); status != 200 {
		t.Fatalf("domain aud: %d %s", status, body)
	}
	cases := []struct {
		name      string
		assertion string
		code      int
	}{
		{"unregistered certificate", assertion(t, other, otherKey, id, tokenURL, time.Now(), false), 700027},
		{"signed by another key", assertion(t, cert, otherKey, id, tokenURL, time.Now(), false), 700027},
		{"expired assertion", assertion(t, cert, key, id, tokenURL, time.Now().Add(-time.Hour), false), 700024},
		{"wrong audience", assertion(t, cert, key, id, "https://login.microsoftonline.com/"+testTenantID+"/oauth2/v2.0/token", time.Now(), false), 50012},
		{"issuer is not the client", assertion(t, cert, key, "99999999-2222-3333-4444-555555555555", tokenURL, time.Now(), false), 700021},
		{"garbage", "not.a.jwt", 50027},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, tokenURL, form(tc.assertion))
			wantTokenError(t, status, body, 401, "invalid_client", tc.code)
		})
	}
	// The certificate expires with the server's clock.
	good := assertion(t, old, oldKey, id, tokenURL, time.Now().Add(25*time.Hour), false)
	f.s.Advance(25 * time.Hour)
	status, body := post(t, tokenURL, form(assertion(t, cert, key, id, tokenURL, time.Now().Add(25*time.Hour), false)))
	e := wantTokenError(t, status, body, 401, "invalid_client", 700027)
	if !strings.Contains(e.ErrorDescription, "expired") {
		t.Errorf("expired certificate: %q", e.ErrorDescription)
	}
	if status, body := post(t, tokenURL, form(good)); status != 200 {
		t.Fatalf("unexpired certificate: %d %s", status, body)
	}
}

func TestPasswordGrant(t *testing.T) {
	f := newFixture(t, Options{})
	tr := f.userToken(t, ScopeIMAP+" "+ScopeSMTP+" offline_access")
	if tr.RefreshToken == "" || tr.Scope != ScopeIMAP+" "+ScopeSMTP {
		t.Errorf("scope %q refresh %v", tr.Scope, tr.RefreshToken != "")
	}
	c, err := f.s.ParseToken(tr.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audience != OutlookAudience || c.UPN != testUser || c.Scope != "IMAP.AccessAsUser.All SMTP.Send" || c.IDType != "user" || len(c.Roles) != 0 {
		t.Errorf("claims %+v", c)
	}
	// Without offline_access there is no refresh token.
	if tr := f.userToken(t, ScopeGraphMailReadWrite); tr.RefreshToken != "" {
		t.Errorf("refresh token without offline_access")
	}

	ropc := func(user, password, scope string) url.Values {
		return url.Values{"grant_type": {"password"}, "client_id": {f.app.ClientID()}, "client_secret": {f.secret},
			"username": {user}, "password": {password}, "scope": {scope}}
	}
	mk := func(upn string, cfg UserConfig) string {
		cfg.UPN, cfg.Password = upn, "pw"
		if _, err := f.tenant.AddUser(cfg); err != nil {
			t.Fatal(err)
		}
		return upn
	}
	mfa := mk("mfa@contoso.example", UserConfig{MFARequired: true})
	mfaReg := mk("mfareg@contoso.example", UserConfig{MFARegistrationRequired: true})
	ca := mk("ca@contoso.example", UserConfig{ConditionalAccessBlock: true})
	off := mk("off@contoso.example", UserConfig{AccountDisabled: true})
	old := mk("old@contoso.example", UserConfig{PasswordExpired: true})
	noConsent, _ := f.tenant.AddApp(AppConfig{Scopes: []string{ScopeIMAP}})
	noConsent.AddSecret("nc", time.Now().Add(time.Hour))
	for _, tc := range []struct {
		name string
		form url.Values
		err  string
		code int
	}{
		{"bad password", ropc(testUser, "wrong", ScopeIMAP), "invalid_grant", 50126},
		{"shared mailbox cannot sign in", ropc(testShared, "", ScopeIMAP), "invalid_request", 900144},
		{"shared mailbox with a password", ropc(testShared, "x", ScopeIMAP), "invalid_grant", 50126},
		{"unknown user", ropc("nobody@contoso.example", "x", ScopeIMAP), "invalid_grant", 50034},
		{"MFA required", ropc(mfa, "pw", ScopeIMAP), "invalid_grant", 50076},
		{"MFA registration", ropc(mfaReg, "pw", ScopeIMAP), "invalid_grant", 50079},
		{"conditional access", ropc(ca, "pw", ScopeIMAP), "invalid_grant", 53003},
		{"disabled account", ropc(off, "pw", ScopeIMAP), "invalid_grant", 50057},
		{"expired password", ropc(old, "pw", ScopeIMAP), "invalid_grant", 50055},
		{"scope not consented", ropc(testUser, testPassword, ScopePOP), "invalid_grant", 65001},
		{"no consent at all", url.Values{"grant_type": {"password"}, "client_id": {noConsent.ClientID()}, "client_secret": {"nc"},
			"username": {testUser}, "password": {testPassword}, "scope": {ScopeIMAP}}, "invalid_grant", 65001},
		{"no client secret", url.Values{"grant_type": {"password"}, "client_id": {f.app.ClientID()},
			"username": {testUser}, "password": {testPassword}, "scope": {ScopeIMAP}}, "invalid_client", 7000218},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, f.s.TokenURL(testTenantID), tc.form)
			want := 400
			if tc.err == "invalid_client" {
				want = 401
			}
			e := wantTokenError(t, status, body, want, tc.err, tc.code)
			if tc.code == 65001 && e.Suberror != "consent_required" {
				t.Errorf("suberror %q", e.Suberror)
			}
		})
	}
	status, body := post(t, f.s.TokenURL("common"), ropc(testUser, testPassword, ScopeIMAP))
	wantTokenError(t, status, body, 400, "invalid_request", 9001023)
	if status, body := post(t, f.s.TokenURL("organizations"), ropc(testUser, testPassword, ScopeIMAP)); status != 200 {
		t.Errorf("ROPC on organizations: %d %s", status, body)
	}
}

// TestScpCarriesEveryConsentedScope: a delegated token's scp (and the answer's scope)
// holds every scope consented for its API, by the administrator or by the user, not only
// the requested ones, as Entra ID does (ms365-protocol.md §8.6); a scope nobody consented
// to is still refused.
func TestScpCarriesEveryConsentedScope(t *testing.T) {
	f := newFixture(t, Options{})
	f.app.SetScopes(ScopeGraphMailReadWriteShared, ScopeGraphUserRead, ScopeIMAP)
	f.app.ConsentUser(testUser, ScopeGraphMailSendShared)
	tr := f.userToken(t, ScopeGraphUserRead)
	c, err := f.s.ParseToken(tr.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Scope != "Mail.ReadWrite.Shared Mail.Send.Shared User.Read" {
		t.Errorf("scp %q, want every consented Graph scope (not IMAP's, another API)", c.Scope)
	}
	if want := ScopeGraphMailReadWriteShared + " " + ScopeGraphMailSendShared + " " + ScopeGraphUserRead; tr.Scope != want {
		t.Errorf("scope %q, want %q", tr.Scope, want)
	}
	status, body := post(t, f.s.TokenURL(testTenantID), url.Values{"grant_type": {"password"}, "client_id": {f.app.ClientID()},
		"client_secret": {f.secret}, "username": {testUser}, "password": {testPassword}, "scope": {ScopeGraphMailReadWrite}})
	wantTokenError(t, status, body, 400, "invalid_grant", 65001)
}

func TestRefreshTokenRotationExpiryRevocation(t *testing.T) {
	f := newFixture(t, Options{RefreshTokenInactivity: 24 * time.Hour})
	first := f.userToken(t, ScopeIMAP+" offline_access").RefreshToken
	refresh := func(rt, scope string) (int, []byte) {
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {f.app.ClientID()}, "client_secret": {f.secret}, "refresh_token": {rt}}
		if scope != "" {
			form.Set("scope", scope)
		}
		return post(t, f.s.TokenURL(testTenantID), form)
	}
	status, body := refresh(first, "")
	if status != 200 {
		t.Fatalf("refresh: %d %s", status, body)
	}
	var tr TokenResponse
	_ = json.Unmarshal(body, &tr)
	if tr.RefreshToken == "" || tr.RefreshToken == first {
		t.Fatalf("refresh did not rotate the refresh token")
	}
	// The same grant redeems for another resource (one token per resource).
	status, body = refresh(tr.RefreshToken, ScopeGraphMailReadWrite+" offline_access")
	if status != 200 {
		t.Fatalf("refresh for Graph: %d %s", status, body)
	}
	var g TokenResponse
	_ = json.Unmarshal(body, &g)
	if c, _ := f.s.ParseToken(g.AccessToken); c.Audience != GraphAudience || c.Scope != "Mail.ReadWrite Mail.Send" {
		t.Errorf("Graph token from refresh: aud %s scp %s", c.Audience, c.Scope)
	}
	status, body = refresh(tr.RefreshToken, ScopeIMAP+" "+ScopeGraphMailReadWrite)
	wantTokenError(t, status, body, 400, "invalid_scope", 700022)

	// Inactivity: a refresh token unused for longer than the window is dead; the one
	// used recently is not.
	f.s.Advance(20 * time.Hour)
	status, body = refresh(g.RefreshToken, "")
	if status != 200 {
		t.Fatalf("refresh within the window: %d %s", status, body)
	}
	_ = json.Unmarshal(body, &tr)
	f.s.Advance(5 * time.Hour)
	status, body = refresh(first, "")
	wantTokenError(t, status, body, 400, "invalid_grant", 700082)
	if status, body := refresh(tr.RefreshToken, ""); status != 200 {
		t.Fatalf("recently used refresh token: %d %s", status, body)
	}

	// Revocation (admin sign-out or password change) kills every refresh token.
	if err := f.s.RevokeUserSessions(testUser); err != nil {
		t.Fatal(err)
	}
	status, body = refresh(tr.RefreshToken, "")
	wantTokenError(t, status, body, 400, "invalid_grant", 50173)
	fresh := f.userToken(t, ScopeIMAP+" offline_access").RefreshToken
	if status, body := refresh(fresh, ""); status != 200 {
		t.Fatalf("refresh token issued after the revocation: %d %s", status, body)
	}
	f.user.SetPassword("new-pw")
	status, body = refresh(fresh, "")
	wantTokenError(t, status, body, 400, "invalid_grant", 50173)

	// Revoking an app's refresh tokens.
	f.user.SetPassword(testPassword)
	status, body = post(t, f.s.TokenURL(testTenantID), url.Values{"grant_type": {"password"}, "client_id": {f.app.ClientID()},
		"client_secret": {f.secret}, "username": {testUser}, "password": {testPassword}, "scope": {ScopeIMAP + " offline_access"}})
	if status != 200 {
		t.Fatalf("sign-in with the new password: %d %s", status, body)
	}
	_ = json.Unmarshal(body, &tr)
	f.s.RevokeRefreshTokens(f.app.ClientID())
	status, body = refresh(tr.RefreshToken, "")
	wantTokenError(t, status, body, 400, "invalid_grant", 50173)
}

func TestTokenEndpointUnavailable(t *testing.T) {
	f := newFixture(t, Options{})
	f.s.FailTokenRequests(2)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {f.app.ClientID()}, "client_secret": {f.secret},
		"scope": {GraphAudience + "/.default"}}
	for range 2 {
		status, body := post(t, f.s.TokenURL(testTenantID), form)
		wantTokenError(t, status, body, 503, "temporarily_unavailable", 90033)
	}
	if status, body := post(t, f.s.TokenURL(testTenantID), form); status != 200 {
		t.Errorf("third request: %d %s", status, body)
	}
}

func TestAccessTokenAudienceAndExpiryAtIntrospection(t *testing.T) {
	f := newFixture(t, Options{AccessTokenLifetime: 60 * time.Second})
	introspect := func(u, tok string) map[string]any {
		t.Helper()
		status, body := post(t, u, url.Values{"token": {tok}})
		if status != 200 {
			t.Fatalf("introspect: %d %s", status, body)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	active := func(m map[string]any, email string) bool { return m["active"] == true && m["email"] == email }

	exch := f.appToken(t, ExchangeAudience+"/.default")
	graph := f.appToken(t, GraphAudience+"/.default")
	if m := introspect(f.s.IntrospectURL(), exch); !active(m, testShared) {
		t.Errorf("app Exchange token: %v", m)
	}
	if m := introspect(f.s.IntrospectURL(), graph); m["active"] != false || len(m) != 1 {
		t.Errorf("Graph token at introspection: %v, want {active:false}", m)
	}
	if m := introspect(f.s.IntrospectURLFor(testUser), exch); m["active"] != false {
		t.Errorf("app token for a mailbox without FullAccess: %v", m)
	}
	// Without FullAccess on any mailbox, or on two, the plain URL cannot say which.
	f.app.GrantFullAccess(testUser)
	if m := introspect(f.s.IntrospectURL(), exch); m["active"] != false {
		t.Errorf("app with two FullAccess grants at the plain URL: %v", m)
	}
	if m := introspect(f.s.IntrospectURLFor(testUser), exch); !active(m, testUser) {
		t.Errorf("IntrospectURLFor(user): %v", m)
	}
	f.app.RevokeFullAccess(testUser)

	// Delegated: the user's own mailbox; a shared one needs the user's FullAccess.
	del := f.userToken(t, ScopeIMAP).AccessToken
	if m := introspect(f.s.IntrospectURL(), del); !active(m, testUser) {
		t.Errorf("delegated token: %v", m)
	}
	if m := introspect(f.s.IntrospectURLFor(testShared), del); m["active"] != false {
		t.Errorf("delegated token on a shared mailbox without FullAccess: %v", m)
	}
	f.user.GrantFullAccess(testShared)
	if m := introspect(f.s.IntrospectURLFor(testShared), del); !active(m, testShared) {
		t.Errorf("delegated token on a shared mailbox with FullAccess: %v", m)
	}
	if m := introspect(f.s.IntrospectURL(), f.userToken(t, ScopeGraphMailReadWrite).AccessToken); m["active"] != false {
		t.Errorf("delegated Graph token at introspection: %v", m)
	}

	// Expiry: the token lives 60 s by the server's clock.
	f.s.Advance(61 * time.Second)
	if m := introspect(f.s.IntrospectURL(), exch); m["active"] != false {
		t.Errorf("expired token: %v", m)
	}
	exch = f.appToken(t, ExchangeAudience+"/.default")
	if m := introspect(f.s.IntrospectURL(), exch); !active(m, testShared) {
		t.Errorf("new token: %v", m)
	}
	// ExpireAccessTokens: every token issued so far, but not the next one.
	f.s.ExpireAccessTokens()
	if m := introspect(f.s.IntrospectURL(), exch); m["active"] != false {
		t.Errorf("token after ExpireAccessTokens: %v", m)
	}
	if m := introspect(f.s.IntrospectURL(), f.appToken(t, ExchangeAudience+"/.default")); !active(m, testShared) {
		t.Errorf("token issued right after ExpireAccessTokens: %v", m)
	}
	// Revoked user sessions end delegated access tokens too.
	del = f.userToken(t, ScopeIMAP).AccessToken
	_ = f.s.RevokeUserSessions(testUser)
	if m := introspect(f.s.IntrospectURL(), del); m["active"] != false {
		t.Errorf("delegated token after revocation: %v", m)
	}
	// Tokens not from this server, or tampered with, are inactive.
	if m := introspect(f.s.IntrospectURL(), exch[:len(exch)-4]+"AAAA"); m["active"] != false {
		t.Errorf("tampered token: %v", m)
	}
	// Unlicensed mailbox and a disabled protocol.
	f.shared.Update(func(c *UserConfig) { c.IMAPDisabled = true })
	tok := f.appToken(t, ExchangeAudience+"/.default")
	req, _ := http.NewRequest(http.MethodPost, f.s.IntrospectURL(), strings.NewReader("token="+tok))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Dovecot-Auth-Service", "submission")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if !active(m, testShared) {
		t.Errorf("SMTP login with IMAP disabled: %v", m)
	}
	if m := introspect(f.s.IntrospectURL(), tok); m["active"] != false {
		t.Errorf("IMAP disabled, protocol unknown: %v", m)
	}
}
