package web

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDemoMicrosoftShown: with the demo's stand-in set, the Mailboxes page, the mailbox
// form and the migration page show its values, client secret included, to admins only;
// without it (serve) none of it shows.
func TestDemoMicrosoftShown(t *testing.T) {
	f := newFixture(t)
	demo := &DemoMicrosoft{LoginURL: "http://127.0.0.1:4001", GraphURL: "http://127.0.0.1:4002", TenantID: "tenant-guid",
		ClientID: "client-guid", ClientSecret: "demo-secret-value", Mailbox: "support@contoso.example"}
	h, err := New(Options{Store: f.st, Auth: f.auth, Mailboxes: f.mbox, Logger: slog.New(slog.DiscardHandler), Demo: demo})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	paths := []string{"/mailboxes", "/mailboxes/new?direction=inbound", "/mailboxes/migrate"}

	admin := f.signIn(t, "admin")
	sam := f.signIn(t, "sam")
	for _, path := range paths {
		admin.base = srv.URL
		p := admin.get(path)
		for _, want := range []string{`id="demo-microsoft"`, "demo-secret-value", "client-guid", "tenant-guid", "http://127.0.0.1:4001"} {
			if !strings.Contains(p.body, want) {
				t.Errorf("demo, admin, %s: %d, lacks %q", path, p.status, want)
			}
		}
		admin.base = f.srv.URL // the server without the demo
		if p := admin.get(path); strings.Contains(p.body, "demo-microsoft") {
			t.Errorf("without the demo, %s shows the demo box", path)
		}
	}
	sam.base = srv.URL
	if p := sam.get("/mailboxes"); strings.Contains(p.body, "demo-secret-value") {
		t.Error("a supervisor sees the demo's client secret")
	}
}
