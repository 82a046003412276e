package mailbox_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// TestSetSignedIn: a finished delegated sign-in stores the refresh token encrypted and the
// account, clears the error of the dead sign-in, drops cached tokens and is in the audit
// log without the token; a mailbox of another method is refused.
func TestSetSignedIn(t *testing.T) {
	ctx := context.Background()
	svc, st, pws := newService(t)
	var forgotten []int64
	svc.OnCredentialsChange = func(id int64) { forgotten = append(forgotten, id) }
	m, err := svc.Create(ctx, "admin", mailbox.Input{Name: "delegated", Direction: store.Inbound, Protocol: mailbox.Graph,
		Address: "support@contoso.example", Auth: store.AuthOAuthDelegated,
		OAuth: store.OAuth{Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetMailboxStatus(ctx, m.ID, store.MailboxStatus{Status: store.StatusError, Message: "the sign-in has expired or was revoked: sign in again", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	forgotten = nil
	const token = "0.AXcA-refresh-token-value"
	got, err := svc.SetSignedIn(ctx, "admin", m.ID, " agent@contoso.example ", vault.NewSecret(token))
	if err != nil {
		t.Fatal(err)
	}
	if got.OAuth.Account != "agent@contoso.example" || !got.RefreshTokenSet {
		t.Errorf("after the sign-in: account %q, refresh token set %v", got.OAuth.Account, got.RefreshTokenSet)
	}
	if got.Status != store.StatusUnknown || got.StatusMessage != "" {
		t.Errorf("status after a new sign-in: %s %q, want unknown without the old error", got.Status, got.StatusMessage)
	}
	if credential.SignInNeeded(got) {
		t.Error("the mailbox still asks for a sign-in")
	}
	if stored, err := pws.Secrets().Get(ctx, m.ID, store.SecretRefreshToken); err != nil || stored.Reveal() != token {
		t.Errorf("stored refresh token is not the one signed in with (err %v)", err)
	}
	if len(forgotten) != 1 || forgotten[0] != m.ID {
		t.Errorf("OnCredentialsChange calls %v, want [%d]", forgotten, m.ID)
	}
	events, err := st.ListAuditFor(ctx, "mailbox:"+strconv.FormatInt(m.ID, 10), 1)
	if err != nil || len(events) != 1 {
		t.Fatalf("audit: %v %v", events, err)
	}
	if e := events[0]; e.Action != "mailbox.sign_in" || !strings.Contains(e.New, "account=agent@contoso.example") ||
		strings.Contains(e.Old+e.New, token) || !strings.Contains(e.New, "refresh_token=***") {
		t.Errorf("audit event %+v: want mailbox.sign_in with the account and the token masked", e)
	}

	app, err := svc.Create(ctx, "admin", mailbox.Input{Name: "app", Direction: store.Inbound, Protocol: mailbox.Graph,
		Address: "sales@contoso.example", Auth: store.AuthOAuthApp, ClientSecret: pw("app-secret"),
		OAuth: store.OAuth{Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetSignedIn(ctx, "admin", app.ID, "x@contoso.example", vault.NewSecret(token)); fieldErr(t, err)["auth"] == "" {
		t.Errorf("a person's sign-in on an app mailbox: %v, want an auth field error", err)
	}
}
