package mstest

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestOpenIDConfiguration: the discovery document names the tenant's issuer (its GUID
// even when asked by domain), the endpoints and RS256, as Microsoft's does.
func TestOpenIDConfiguration(t *testing.T) {
	f := newFixture(t, Options{})
	for _, seg := range []string{testTenantID, "contoso.example"} {
		resp, err := http.Get(f.s.LoginURL() + "/" + seg + "/v2.0/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if doc["issuer"] != f.s.OpenIDIssuer(testTenantID) {
			t.Errorf("%s: issuer %v, want %s", seg, doc["issuer"], f.s.OpenIDIssuer(testTenantID))
		}
		if doc["authorization_endpoint"] != f.s.AuthorizeURL(seg) || doc["token_endpoint"] != f.s.TokenURL(seg) ||
			doc["jwks_uri"] != f.s.LoginURL()+"/"+seg+"/discovery/v2.0/keys" {
			t.Errorf("%s: endpoints %v %v %v", seg, doc["authorization_endpoint"], doc["token_endpoint"], doc["jwks_uri"])
		}
		if algs, _ := doc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "RS256" {
			t.Errorf("%s: id_token_signing_alg_values_supported %v", seg, doc["id_token_signing_alg_values_supported"])
		}
	}
}

// TestIDTokenClaimsAndRotation: an authorization code with scope openid profile email
// brings an id token with the nonce and Microsoft's claims, signed by a published key; a
// rotation publishes a new key and removes the old one after the grace.
func TestIDTokenClaimsAndRotation(t *testing.T) {
	f := newFixture(t, Options{})
	f.user.SetGroups("9a5c1b8e-0000-4000-8000-000000000001")
	f.user.SetAppRoles("Postroom.Supervisor")
	cfg := f.oauthConfig("openid", "profile", "email")
	signIn := func() (map[string]any, string) {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		b := newBrowser(t)
		_, loc, body, _, _ := b.signIn(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-0S6_WzA2Mj")), testUser, testPassword)
		code, _ := codeFrom(t, loc)
		if code == "" {
			t.Fatalf("no code: %s", body)
		}
		tok, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		p, err := splitJWT(raw)
		if err != nil {
			t.Fatalf("id token: %v", err)
		}
		var c map[string]any
		if err := json.Unmarshal(p.claims, &c); err != nil {
			t.Fatal(err)
		}
		kid, _ := p.header["kid"].(string)
		return c, kid
	}
	c, kid := signIn()
	want := map[string]any{"aud": f.app.ClientID(), "iss": f.s.OpenIDIssuer(testTenantID), "nonce": "n-0S6_WzA2Mj", "tid": testTenantID,
		"preferred_username": testUser, "email": testUser, "name": "Ana", "ver": "2.0"}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if c["sub"] == c["oid"] || c["oid"] == nil {
		t.Errorf("sub %v must be pairwise, not the object id %v", c["sub"], c["oid"])
	}
	if g, _ := c["groups"].([]any); len(g) != 1 {
		t.Errorf("groups %v", c["groups"])
	}
	if r, _ := c["roles"].([]any); len(r) != 1 || r[0] != "Postroom.Supervisor" {
		t.Errorf("roles %v", c["roles"])
	}
	if ids := f.s.PublishedKeyIDs(); !slices.Contains(ids, kid) {
		t.Errorf("kid %s not published in %v", kid, ids)
	}

	newKid, err := f.s.RotateSigningKey(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ids := f.s.PublishedKeyIDs(); !slices.Equal(ids, []string{kid, newKid}) {
		t.Errorf("during the grace: %v, want old and new", ids)
	}
	if _, k := signIn(); k != newKid {
		t.Errorf("signed by %s after rotation, want %s", k, newKid)
	}
	f.s.Advance(time.Hour)
	if ids := f.s.PublishedKeyIDs(); !slices.Equal(ids, []string{newKid}) {
		t.Errorf("after the grace: %v, want the new key only", ids)
	}
}
