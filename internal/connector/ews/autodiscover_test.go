package ews_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/ewstest"
	"github.com/postroom/postroom/internal/vault"
)

// The stand-in's certificate names these hosts; the test transport sends them to loopback.
var adHosts = []string{"contoso.local", "autodiscover.contoso.local", "mail.contoso.local", "exchange.hoster.local", "hoster.local", "autodiscover.hoster.local", "mail.xn--kln-sna.local"}

const mailEWS = "https://mail.contoso.local/EWS/Exchange.asmx"

// adSetup starts a TLS stand-in that answers autodiscover with mailEWS.
func adSetup(t *testing.T) *ewstest.Server {
	t.Helper()
	s, err := ewstest.Start(ewstest.Options{TLS: true, TLSHosts: adHosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddUser(ewstest.User{Login: login, Password: "pw", Mailbox: login})
	s.AddMailbox(box)
	s.Grant(login, box)
	s.SetEWSURL(mailEWS)
	return s
}

// loopbackClient is an HTTP client that trusts the stand-in and sends every host name to
// loopback (test-only: the domain's autodiscover hosts are the stand-in): port 80 to the
// stand-in's plain listener, other ports to its TLS one, except hosts in down: refused.
func loopbackClient(s *ewstest.Server, down ...string) *http.Client {
	return s.Client(func(host, port string) string {
		switch {
		case port == "80":
			return s.PlainAddr()
		case slices.Contains(down, host):
			return ""
		}
		return s.TLSAddr()
	})
}

func adConfig(s *ewstest.Server, hc *http.Client) ews.DiscoverConfig {
	return ews.DiscoverConfig{Address: box, Login: login, Password: vault.NewSecret("pw"), HTTPClient: hc,
		LookupSRV: func(context.Context, string, string, string) (string, []*net.SRV, error) {
			return "", nil, &net.DNSError{Err: "no such host", IsNotFound: true}
		}}
}

func adError(t *testing.T, err error, kind connector.Kind, detail, advice string) {
	t.Helper()
	var ce *connector.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want a *connector.Error, got %v", err)
	}
	if ce.Kind != kind || !strings.Contains(ce.Err.Error(), detail) || !strings.Contains(ce.Advice, advice) {
		t.Fatalf("want %s with %q and advice %q, got %s: %v / %s", kind, detail, advice, ce.Kind, ce.Err, ce.Advice)
	}
}

// TestAutodiscoverSOAPThenEWS: the SOAP service of the address's domain names the EWS
// URL, which then opens the mailbox.
func TestAutodiscoverSOAPThenEWS(t *testing.T) {
	s := adSetup(t)
	cfg := adConfig(s, loopbackClient(s))
	got, err := ews.Discover(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != mailEWS || got.Endpoint != "https://contoso.local/autodiscover/autodiscover.svc" || got.Hops != 0 {
		t.Fatalf("got %+v", got)
	}
	if n := s.Ops("GetUserSettings"); n != 1 {
		t.Errorf("%d GetUserSettings, want 1", n)
	}
	if err := ews.Check(context.Background(), ews.Config{URL: got.URL, Mailbox: box, Login: login, Password: vault.NewSecret("pw"), HTTPClient: cfg.HTTPClient}); err != nil {
		t.Fatalf("the discovered URL does not open the mailbox: %v", err)
	}
}

// TestAutodiscoverPOX: without the SOAP service, POX (EXPR EwsUrl) answers, after both
// SOAP candidates were asked in Microsoft's order.
func TestAutodiscoverPOX(t *testing.T) {
	s := adSetup(t)
	s.RefuseAutodiscover(true, false)
	got, err := ews.Discover(context.Background(), adConfig(s, loopbackClient(s)))
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != mailEWS || got.Endpoint != "https://contoso.local/autodiscover/autodiscover.xml" {
		t.Fatalf("got %+v", got)
	}
	if h := strings.Join(s.AutodiscoverHosts(), " "); h != "contoso.local autodiscover.contoso.local contoso.local" {
		t.Errorf("hosts asked: %s", h)
	}
}

// TestAutodiscoverSignIn: NTLM-only autodiscover, and OAuth bearer tokens.
func TestAutodiscoverSignIn(t *testing.T) {
	s := adSetup(t)
	s.AddToken("tok-1", login)
	cfg := adConfig(s, loopbackClient(s))
	cfg.Login, cfg.Password = "", vault.Secret{}
	cfg.Token = func(context.Context, bool) (string, error) { return "tok-1", nil }
	if got, err := ews.Discover(context.Background(), cfg); err != nil || got.URL != mailEWS {
		t.Fatalf("bearer: %+v %v", got, err)
	}
	s.RequireNTLM()
	if got, err := ews.Discover(context.Background(), adConfig(s, loopbackClient(s))); err != nil || got.URL != mailEWS {
		t.Fatalf("ntlm: %+v %v", got, err)
	}
}

// TestAutodiscoverRedirects: an address redirect and a URL redirect are followed, for
// SOAP and POX; a loop ends after 10 hops with the fix named.
func TestAutodiscoverRedirects(t *testing.T) {
	s := adSetup(t)
	s.AddMailbox("support@contoso.onprem")
	s.RedirectAddress(box, "support@contoso.onprem")
	for _, pox := range []bool{false, true} {
		s.RefuseAutodiscover(pox, false)
		got, err := ews.Discover(context.Background(), adConfig(s, loopbackClient(s, "contoso.onprem", "autodiscover.contoso.onprem")))
		if err == nil || !strings.Contains(err.Error(), "contoso.onprem") {
			t.Fatalf("pox %v: the redirected address's domain is asked next and is down: %+v %v", pox, got, err)
		}
	}
	s.RefuseAutodiscover(false, false)
	s.RedirectAddress(box, "")
	s.RedirectURL("https://mail.contoso.local/autodiscover/autodiscover.svc")
	got, err := ews.Discover(context.Background(), adConfig(s, loopbackClient(s)))
	if err != nil || got.URL != mailEWS || got.Endpoint != "https://mail.contoso.local/autodiscover/autodiscover.svc" || got.Hops != 1 {
		t.Fatalf("redirect URL (SOAP): %+v %v", got, err)
	}
	s.RefuseAutodiscover(true, false)
	s.RedirectURL("https://mail.contoso.local/autodiscover/autodiscover.xml")
	got, err = ews.Discover(context.Background(), adConfig(s, loopbackClient(s)))
	if err != nil || got.Endpoint != "https://mail.contoso.local/autodiscover/autodiscover.xml" || got.Hops != 1 {
		t.Fatalf("redirect URL (POX): %+v %v", got, err)
	}
	s.RedirectURL("http://mail.contoso.local/autodiscover/autodiscover.xml")
	_, err = ews.Discover(context.Background(), adConfig(s, loopbackClient(s)))
	adError(t, err, connector.KindConfig, "not https", "publish autodiscover.contoso.local")

	s.RedirectURL("")
	s.RefuseAutodiscover(false, false)
	s.AddMailbox("a@contoso.local")
	s.RedirectAddress(box, "a@contoso.local")
	s.RedirectAddress("a@contoso.local", box)
	_, err = ews.Discover(context.Background(), adConfig(s, loopbackClient(s)))
	adError(t, err, connector.KindConfig, "more than 10 redirects", "redirects in a loop")
}

// TestAutodiscoverRedirectAddressFound: the mailbox answers under the address it redirects
// to.
func TestAutodiscoverRedirectAddressFound(t *testing.T) {
	s := adSetup(t)
	s.AddMailbox("shared@contoso.local")
	s.RedirectAddress(box, "shared@contoso.local")
	got, err := ews.Discover(context.Background(), adConfig(s, loopbackClient(s)))
	if err != nil || got.URL != mailEWS || got.Address != "shared@contoso.local" || got.Hops != 1 {
		t.Fatalf("got %+v %v", got, err)
	}
}

// TestAutodiscoverHTTPRedirectAndSRV: when no https candidate answers, the 302 of
// http://autodiscover.<domain> and then the SRV record lead to the server.
func TestAutodiscoverHTTPRedirectAndSRV(t *testing.T) {
	s := adSetup(t)
	hc := loopbackClient(s, "contoso.local", "autodiscover.contoso.local")
	s.RedirectHTTP("https://mail.contoso.local/autodiscover/autodiscover.xml")
	got, err := ews.Discover(context.Background(), adConfig(s, hc))
	if err != nil || got.URL != mailEWS || got.Endpoint != "https://mail.contoso.local/autodiscover/autodiscover.xml" || got.Hops != 1 {
		t.Fatalf("302: %+v %v", got, err)
	}
	s.RedirectHTTP("http://mail.contoso.local/autodiscover/autodiscover.xml") // not https: not followed
	cfg := adConfig(s, loopbackClient(s, "contoso.local", "autodiscover.contoso.local"))
	asked := ""
	cfg.LookupSRV = func(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
		asked = "_" + service + "._" + proto + "." + name
		return "", []*net.SRV{{Target: "mail.contoso.local.", Port: 443}}, nil
	}
	got, err = ews.Discover(context.Background(), cfg)
	if err != nil || got.URL != mailEWS || got.Endpoint != "https://mail.contoso.local/autodiscover/autodiscover.svc" || asked != "_autodiscover._tcp.contoso.local" {
		t.Fatalf("SRV %q: %+v %v", asked, got, err)
	}
}

// TestAutodiscoverHostOverride: with a host named, only it is asked.
func TestAutodiscoverHostOverride(t *testing.T) {
	s := adSetup(t)
	s.RefuseAutodiscover(true, false)
	cfg := adConfig(s, loopbackClient(s))
	cfg.Host = "mail.contoso.local"
	got, err := ews.Discover(context.Background(), cfg)
	if err != nil || got.URL != mailEWS || got.Endpoint != "https://mail.contoso.local/autodiscover/autodiscover.xml" {
		t.Fatalf("got %+v %v", got, err)
	}
	if h := strings.Join(s.AutodiscoverHosts(), " "); h != "mail.contoso.local mail.contoso.local" {
		t.Errorf("hosts asked: %s", h)
	}
	s.RefuseAutodiscover(true, true)
	_, err = ews.Discover(context.Background(), cfg)
	adError(t, err, connector.KindConfig, "tried https://mail.contoso.local/autodiscover/autodiscover.svc, https://mail.contoso.local/autodiscover/autodiscover.xml", "the autodiscover host named does not answer")

	cfg.Host = "http://mail.contoso.local"
	_, err = ews.Discover(context.Background(), cfg)
	adError(t, err, connector.KindConfig, "not https", "use https")
}

// TestAutodiscoverFailuresNamed: each failure comes with its fix.
func TestAutodiscoverFailuresNamed(t *testing.T) {
	s := adSetup(t)
	ctx := context.Background()

	cfg := adConfig(s, loopbackClient(s))
	cfg.Address = "nobody@contoso.local"
	_, err := ews.Discover(ctx, cfg)
	adError(t, err, connector.KindConfig, "InvalidUser", "check the address")

	s.RefuseAutodiscover(true, false)
	_, err = ews.Discover(ctx, cfg)
	adError(t, err, connector.KindConfig, "500: The email address can't be found.", "check the address")
	s.RefuseAutodiscover(false, false)

	cfg = adConfig(s, loopbackClient(s))
	cfg.Password = vault.NewSecret("wrong")
	_, err = ews.Discover(ctx, cfg)
	adError(t, err, connector.KindAuth, "401", "it offers: Basic, Bearer")

	cfg = adConfig(s, loopbackClient(s, adHosts...))
	_, err = ews.Discover(ctx, cfg)
	adError(t, err, connector.KindConfig, "https://contoso.local/autodiscover/autodiscover.svc, https://autodiscover.contoso.local/autodiscover/autodiscover.svc, https://contoso.local/autodiscover/autodiscover.xml, https://autodiscover.contoso.local/autodiscover/autodiscover.xml, http://autodiscover.contoso.local/autodiscover/autodiscover.xml, SRV _autodiscover._tcp.contoso.local",
		"publish autodiscover.contoso.local")

	cfg = adConfig(s, loopbackClient(s))
	cfg.Host = "exchange.fabrikam.local" // not in the stand-in's certificate
	_, err = ews.Discover(ctx, cfg)
	adError(t, err, connector.KindTLS, "certificate", "certificate")

	cfg = adConfig(s, loopbackClient(s))
	cfg.Address = "support"
	_, err = ews.Discover(ctx, cfg)
	adError(t, err, connector.KindConfig, "address", "email address")
}

// TestEndpointsRememberAndForget: the URL found is remembered per key; an EWS URL that
// answers 404 calls Stale, which forgets it, and the next Resolve asks autodiscover again.
func TestEndpointsRememberAndForget(t *testing.T) {
	s := adSetup(t)
	cfg := adConfig(s, loopbackClient(s))
	var e ews.Endpoints
	ctx := context.Background()
	for range 2 {
		if u, err := e.Resolve(ctx, "1", cfg); err != nil || u != mailEWS {
			t.Fatalf("resolve: %s %v", u, err)
		}
	}
	if n := s.Ops("GetUserSettings"); n != 1 {
		t.Fatalf("%d autodiscover requests for two resolves, want 1", n)
	}
	stale := 0
	err := ews.Check(ctx, ews.Config{URL: "https://mail.contoso.local/EWS/Moved.asmx", Mailbox: box, Login: login, Password: vault.NewSecret("pw"),
		HTTPClient: cfg.HTTPClient, Stale: func() { stale++; e.Forget("1") }})
	if err == nil || stale != 1 {
		t.Fatalf("a 404 from EWS: err %v, Stale called %d times", err, stale)
	}
	if _, err := e.Resolve(ctx, "1", cfg); err != nil || s.Ops("GetUserSettings") != 2 {
		t.Fatalf("after Forget: %v, %d autodiscover requests, want 2", err, s.Ops("GetUserSettings"))
	}
}
