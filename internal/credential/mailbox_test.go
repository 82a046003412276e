package credential_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

func TestPlanForMicrosoftClouds(t *testing.T) {
	base := store.Mailbox{Name: "support", Protocol: "imap", Auth: store.AuthOAuthApp,
		OAuth: store.OAuth{Provider: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555"}}
	cases := []struct {
		name      string
		mutate    func(*store.Mailbox)
		aud       credential.Audience
		tokenURL  string
		wantScope string
	}{
		{"global app IMAP", func(*store.Mailbox) {}, credential.AudienceExchange,
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://outlook.office365.com/.default"},
		{"global app Graph", func(m *store.Mailbox) { m.Protocol = "graph" }, credential.AudienceGraph,
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://graph.microsoft.com/.default"},
		{"US Government Graph", func(m *store.Mailbox) { m.Protocol = "graph"; m.OAuth.Cloud = "usgov" }, credential.AudienceGraph,
			"https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://graph.microsoft.us/.default"},
		{"China IMAP", func(m *store.Mailbox) { m.OAuth.Cloud = "china" }, credential.AudienceExchange,
			"https://login.chinacloudapi.cn/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://partner.outlook.cn/.default"},
		{"custom authority keeps global scopes", func(m *store.Mailbox) { m.OAuth.Cloud = "custom"; m.OAuth.AuthorityURL = "http://127.0.0.1:8443/" },
			credential.AudienceExchange, "http://127.0.0.1:8443/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://outlook.office365.com/.default"},
		{"delegated SMTP", func(m *store.Mailbox) { m.Protocol = "smtp"; m.Auth = store.AuthOAuthDelegated }, credential.AudienceExchange,
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://outlook.office.com/SMTP.Send"},
		{"delegated Graph asks for the .Shared scopes", func(m *store.Mailbox) { m.Protocol = "graph"; m.Auth = store.AuthOAuthDelegated },
			credential.AudienceGraph, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
			"https://graph.microsoft.com/Mail.ReadWrite.Shared https://graph.microsoft.com/Mail.Send.Shared"},
		{"password grant Graph in US Government", func(m *store.Mailbox) { m.Protocol = "graph"; m.Auth = store.AuthOAuthROPC; m.OAuth.Cloud = "usgov" },
			credential.AudienceGraph, "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token",
			"https://graph.microsoft.us/Mail.ReadWrite.Shared https://graph.microsoft.us/Mail.Send.Shared"},
		{"delegated POP3", func(m *store.Mailbox) { m.Protocol = "pop3"; m.Auth = store.AuthOAuthROPC }, credential.AudienceExchange,
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://outlook.office.com/POP.AccessAsUser.All"},
		{"delegated EWS", func(m *store.Mailbox) { m.Protocol = "ews"; m.Auth = store.AuthOAuthDelegated }, credential.AudienceExchange,
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://outlook.office.com/EWS.AccessAsUser.All"},
		{"custom provider", func(m *store.Mailbox) {
			m.OAuth.Provider = "custom"
			m.OAuth.TokenURL = "https://oauth2.googleapis.com/token"
			m.OAuth.Scopes = "https://mail.google.com/"
		}, credential.AudienceExchange, "https://oauth2.googleapis.com/token", "https://mail.google.com/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base
			c.mutate(&m)
			p, err := credential.PlanFor(m, c.aud)
			if err != nil {
				t.Fatalf("PlanFor: %v", err)
			}
			if p.TokenURL != c.tokenURL {
				t.Errorf("token URL %q, want %q", p.TokenURL, c.tokenURL)
			}
			for _, want := range strings.Fields(c.wantScope) {
				if !contains(p.Scopes, want) {
					t.Errorf("scopes %q lack %q", p.Scopes, want)
				}
			}
			if m.Auth != store.AuthOAuthApp && m.OAuth.Provider != "custom" && !contains(p.Scopes, "offline_access") {
				t.Errorf("delegated scopes %q lack offline_access: no refresh token would come back", p.Scopes)
			}
		})
	}
	if _, err := credential.PlanFor(store.Mailbox{Name: "x", Auth: store.AuthOAuthApp}, credential.AudienceGraph); err == nil {
		t.Error("PlanFor without a client id: no error")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestClientAssertion: a PEM bundle of certificate and key signs an RS256 assertion whose
// signature the certificate verifies and whose claims Microsoft checks are right.
func TestClientAssertion(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "postroom"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	bundle := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	sign, err := credential.NewClientAssertion(vault.NewSecret(bundle), "client-1", "https://login.example/t/oauth2/v2.0/token")
	if err != nil {
		t.Fatalf("NewClientAssertion: %v", err)
	}
	jwt, err := sign()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q is not a JWS compact serialization", jwt)
	}
	cert, _ := x509.ParseCertificate(der)
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if err := cert.CheckSignature(x509.SHA256WithRSA, []byte(parts[0]+"."+parts[1]), sig); err != nil {
		t.Errorf("the certificate does not verify the assertion: %v", err)
	}
	var claims map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["aud"] != "https://login.example/t/oauth2/v2.0/token" || claims["iss"] != "client-1" || claims["sub"] != "client-1" {
		t.Errorf("claims %v: want aud = token URL, iss = sub = client id", claims)
	}
	if _, err := credential.NewClientAssertion(vault.NewSecret(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))), "c", "u"); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("a bundle without a key: err %v, want one that asks for the private key", err)
	}
}

// TestEWSOnPremisesScopes: an EWS mailbox on Exchange Server (hybrid modern authentication)
// asks for tokens whose resource is the server's own URL, registered as an SPN in Entra ID;
// Exchange Online hosts and an empty host (autodiscover) keep the cloud's resource.
func TestEWSOnPremisesScopes(t *testing.T) {
	for _, c := range []struct {
		name, host, auth, cloud string
		want                    []string
	}{
		{"app on-premises", "mail.contoso.com", store.AuthOAuthApp, "", []string{"https://mail.contoso.com/.default"}},
		{"delegated on-premises", "Mail.Contoso.com.", store.AuthOAuthDelegated, "", []string{"offline_access", "https://mail.contoso.com/EWS.AccessAsUser.All"}},
		{"password grant on-premises", "mail.contoso.com", store.AuthOAuthROPC, "", []string{"offline_access", "https://mail.contoso.com/EWS.AccessAsUser.All"}},
		{"app Exchange Online", "outlook.office365.com", store.AuthOAuthApp, "", []string{"https://outlook.office365.com/.default"}},
		{"delegated Exchange Online", "outlook.office.com", store.AuthOAuthDelegated, "", []string{"offline_access", "https://outlook.office.com/EWS.AccessAsUser.All"}},
		{"app US Government Exchange Online", "outlook.office365.us", store.AuthOAuthApp, "usgov", []string{"https://outlook.office365.us/.default"}},
		{"app autodiscover (no host)", "", store.AuthOAuthApp, "", []string{"https://outlook.office365.com/.default"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := store.Mailbox{Name: "ews", Protocol: "ews", Host: c.host, Auth: c.auth,
				OAuth: store.OAuth{Provider: "microsoft", ClientID: "00000000-0000-0000-0000-000000000001", Tenant: "contoso.onmicrosoft.com", Cloud: c.cloud}}
			p, err := credential.PlanFor(m, credential.AudienceExchange)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(p.Scopes, " ") != strings.Join(c.want, " ") {
				t.Errorf("scopes %q, want %q", p.Scopes, c.want)
			}
		})
	}
	// IMAP on any host keeps Exchange Online's resource: only EWS reaches servers on premises.
	m := store.Mailbox{Name: "imap", Protocol: "imap", Host: "mail.contoso.com", Auth: store.AuthOAuthApp,
		OAuth: store.OAuth{Provider: "microsoft", ClientID: "00000000-0000-0000-0000-000000000001", Tenant: "contoso.onmicrosoft.com"}}
	if p, _ := credential.PlanFor(m, credential.AudienceExchange); strings.Join(p.Scopes, " ") != "https://outlook.office365.com/.default" {
		t.Errorf("IMAP scopes %q", p.Scopes)
	}
}
