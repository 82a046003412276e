package diag_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/ewstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// TestEWSErrorsNamedWithTheirFix: the EWS connection test passes on a reachable mailbox and
// names the fix of each Exchange error.
func TestEWSErrorsNamedWithTheirFix(t *testing.T) {
	s, err := ewstest.Start(ewstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddUser(ewstest.User{Login: "svc@contoso.local", Password: "pw", Mailbox: "svc@contoso.local"})
	s.AddMailbox("support@contoso.local")
	s.AddMailbox("other@contoso.local")
	s.Grant("svc@contoso.local", "support@contoso.local")
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimSuffix(s.URL(), "/EWS/Exchange.asmx"), "http://"))
	p, _ := strconv.Atoi(port)
	mb := func(address, password string) (store.Mailbox, vault.Secret) {
		return store.Mailbox{Name: "ews", Direction: store.Inbound, Protocol: "ews", Address: address, Host: host, Port: p,
			Security: "none", Login: "svc@contoso.local", Folder: "inbox", Auth: store.AuthPassword}, vault.NewSecret(password)
	}
	last := func(r diag.Report) diag.Step { return r.Steps[len(r.Steps)-1] }
	ctx := context.Background()

	m, pw := mb("support@contoso.local", "pw")
	if r := diag.Test(ctx, m, pw, nil); !r.OK {
		t.Fatalf("want OK, got %+v", r)
	}
	for _, tt := range []struct {
		name, address, password, detail, advice string
		busy                                    bool
	}{
		{"unknown mailbox", "nobody@contoso.local", "pw", "ErrorNonExistentMailbox", "primary SMTP address", false},
		{"no access", "other@contoso.local", "pw", "ErrorAccessDenied", "Full Access", false},
		{"wrong password", "support@contoso.local", "bad", "401", "it offers: Basic, Bearer", false},
		{"throttled", "support@contoso.local", "pw", "ErrorServerBusy", "throttling policy", true},
	} {
		if tt.busy {
			s.Throttle(100, time.Millisecond)
		}
		m, pw := mb(tt.address, tt.password)
		r := diag.Test(ctx, m, pw, nil)
		st := last(r)
		if r.OK || !strings.Contains(st.Detail, tt.detail) || !strings.Contains(st.Advice, tt.advice) {
			t.Errorf("%s: got %+v", tt.name, st)
		}
		s.Throttle(0, 0)
	}
}

// TestEWSAutodiscoverStep: an EWS mailbox without a host shows the "Autodiscover" step with
// the EWS URL found, then opens the mailbox there; an unknown address fails that step with
// its fix.
func TestEWSAutodiscoverStep(t *testing.T) {
	s, err := ewstest.Start(ewstest.Options{TLS: true, TLSHosts: []string{"contoso.local", "autodiscover.contoso.local", "mail.contoso.local"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddUser(ewstest.User{Login: "svc@contoso.local", Password: "pw", Mailbox: "svc@contoso.local"})
	s.AddMailbox("support@contoso.local")
	s.Grant("svc@contoso.local", "support@contoso.local")
	s.SetEWSURL("https://mail.contoso.local/EWS/Exchange.asmx")
	// Test-only: every host name goes to the stand-in on loopback.
	hc := s.Client(func(string, string) string { return s.TLSAddr() })
	m := store.Mailbox{Name: "ews", Direction: store.Inbound, Protocol: "ews", Address: "support@contoso.local", Port: 443,
		Security: "tls", Login: "svc@contoso.local", Folder: "inbox", Auth: store.AuthPassword}
	r := diag.Test(context.Background(), m, vault.NewSecret("pw"), &diag.Options{HTTPClient: hc})
	if !r.OK || len(r.Steps) < 2 {
		t.Fatalf("want OK, got %+v", r)
	}
	ad := r.Steps[len(r.Steps)-2]
	if ad.Name != "Autodiscover the EWS URL of support@contoso.local" || !strings.Contains(ad.Detail, "https://mail.contoso.local/EWS/Exchange.asmx (answered by https://contoso.local/autodiscover/autodiscover.svc") {
		t.Errorf("autodiscover step: %+v", ad)
	}
	if open := r.Steps[len(r.Steps)-1]; !strings.Contains(open.Name, "(https://mail.contoso.local/EWS/Exchange.asmx)") {
		t.Errorf("the mailbox is not opened at the URL found: %+v", open)
	}

	m.Address = "nobody@contoso.local"
	r = diag.Test(context.Background(), m, vault.NewSecret("pw"), &diag.Options{HTTPClient: hc})
	last := r.Steps[len(r.Steps)-1]
	if r.OK || last.Name != "Autodiscover the EWS URL of nobody@contoso.local" || !strings.Contains(last.Detail, "InvalidUser") || !strings.Contains(last.Advice, "check the address") {
		t.Errorf("unknown address: %+v", last)
	}
}

// TestEWSAutodiscoverHostStep: with an autodiscover host named, the step says so and only
// that host is asked (the address's domain is down and not asked), and the mailbox opens
// at the URL it names.
func TestEWSAutodiscoverHostStep(t *testing.T) {
	s, err := ewstest.Start(ewstest.Options{TLS: true, TLSHosts: []string{"mail.hoster.local"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddUser(ewstest.User{Login: "svc@contoso.local", Password: "pw", Mailbox: "svc@contoso.local"})
	s.AddMailbox("support@contoso.local")
	s.Grant("svc@contoso.local", "support@contoso.local")
	s.SetEWSURL("https://mail.hoster.local/EWS/Exchange.asmx")
	// Test-only: mail.hoster.local goes to the stand-in on loopback, every other host to a
	// closed port.
	hc := s.Client(func(host, _ string) string {
		if host != "mail.hoster.local" {
			return ""
		}
		return s.TLSAddr()
	})
	m := store.Mailbox{Name: "ews", Direction: store.Inbound, Protocol: "ews", Address: "support@contoso.local", Port: 443,
		Security: "tls", Login: "svc@contoso.local", Folder: "inbox", Auth: store.AuthPassword, AutodiscoverHost: "mail.hoster.local"}
	r := diag.Test(context.Background(), m, vault.NewSecret("pw"), &diag.Options{HTTPClient: hc})
	if !r.OK || len(r.Steps) < 2 {
		t.Fatalf("want OK, got %+v", r)
	}
	ad := r.Steps[len(r.Steps)-2]
	if ad.Name != "Autodiscover the EWS URL of support@contoso.local at mail.hoster.local" ||
		!strings.Contains(ad.Detail, "https://mail.hoster.local/EWS/Exchange.asmx (answered by https://mail.hoster.local/autodiscover/autodiscover.svc") {
		t.Errorf("autodiscover step: %+v", ad)
	}
	if h := strings.Join(s.AutodiscoverHosts(), " "); h != "mail.hoster.local" {
		t.Errorf("hosts asked: %q, want only mail.hoster.local", h)
	}
	if open := r.Steps[len(r.Steps)-1]; !open.OK || !strings.Contains(open.Name, "(https://mail.hoster.local/EWS/Exchange.asmx)") {
		t.Errorf("the mailbox is not opened at the URL found: %+v", open)
	}
}
