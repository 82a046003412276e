package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/sso"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// demoSSOPerson is the sample person of the demo's single sign-on: a member of the
// stand-in's "Supervisors" group, which the demo maps to the supervisor role.
const (
	demoSSOPerson           = "sofia@contoso.example"
	demoSSOSupervisorsGroup = "5e0c4b8a-2f1d-4c3e-9a7b-6d5e4f3a2b1c"
)

// demoSSO is what the demo's start-up text says about single sign-on.
type demoSSO struct {
	Person, Password string
}

// seedSSODemo registers a staff sign-in app in the stand-in's sample tenant (its redirect
// URI the demo's callback on webAddr), adds Sofia in the Supervisors group, and configures
// postroom's single sign-on with that app: the Supervisors group maps to supervisor,
// anyone else in the tenant signs in as an agent, users are created at first sign-in.
func seedSSODemo(ctx context.Context, a *app.App, ms *mstest.Server, t *mstest.Sample, webAddr net.Addr) (demoSSO, error) {
	_, port, err := net.SplitHostPort(webAddr.String())
	if err != nil {
		return demoSSO{}, fmt.Errorf("demo single sign-on: %w", err)
	}
	redirects := []string{"http://" + webAddr.String() + sso.CallbackPath, "http://localhost:" + port + sso.CallbackPath,
		"http://127.0.0.1:" + port + sso.CallbackPath}
	signIn, err := t.Tenant.AddApp(mstest.AppConfig{DisplayName: "postroom staff sign-in", RedirectURIs: redirects})
	if err != nil {
		return demoSSO{}, fmt.Errorf("demo single sign-on app: %w", err)
	}
	secret := "sso8Q~" + randomDemoToken(24)
	signIn.AddSecret(secret, time.Now().Add(180*24*time.Hour))
	password := "sofia-" + randomDemoToken(6)
	sofia, err := t.Tenant.AddUser(mstest.UserConfig{UPN: demoSSOPerson, DisplayName: "Sofia Supervisor", Password: password})
	if err != nil {
		return demoSSO{}, fmt.Errorf("demo single sign-on person: %w", err)
	}
	sofia.SetGroups(demoSSOSupervisorsGroup)
	_, err = a.SSO.Save(ctx, "system", sso.Input{Config: sso.Config{
		Issuer: ms.OpenIDIssuer(t.TenantID), ClientID: signIn.ClientID(), AutoCreate: true, UnmappedRole: store.RoleAgent,
		Mappings: []sso.Mapping{{Value: demoSSOSupervisorsGroup, Role: store.RoleSupervisor}},
	}, ClientSecret: vault.NewSecret(secret)})
	if err != nil {
		return demoSSO{}, fmt.Errorf("demo single sign-on settings: %w", err)
	}
	return demoSSO{Person: demoSSOPerson, Password: password}, nil
}

func randomDemoToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
