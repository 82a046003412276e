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
