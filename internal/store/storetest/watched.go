package storetest

import (
	"slices"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// testEnabledInboundIDs: the ids of the enabled inbound mailboxes of the protocols asked
// for, in id order; disabled, outbound, deleted and other protocols' mailboxes are left out.
func testEnabledInboundIDs(t *testing.T, s store.Store) {
	ctx := t.Context()
	create := func(name, direction, protocol string, enabled bool) int64 {
		t.Helper()
		m, err := s.CreateMailbox(ctx, store.Mailbox{Name: name, Direction: direction, Protocol: protocol,
			Address: name + "@example.com", Host: "mail.example.com", Port: 993, Security: "tls", Login: name,
			Folder: "INBOX", MaxSizeMB: 10, Enabled: enabled})
		must(t, "CreateMailbox "+name, err)
		return m.ID
	}
	watched := create("zeta", store.Inbound, "imap", true) // named last, created first
	pop := create("alpha", store.Inbound, "pop3", true)
	create("off", store.Inbound, "imap", false)
	create("out", store.Outbound, "smtp", true)
	create("graph", store.Inbound, "graph", true)
	deleted := create("gone", store.Inbound, "imap", true)
	must(t, "DeleteMailbox", s.DeleteMailbox(ctx, deleted))

	got, err := s.EnabledInboundIDs(ctx, []string{"imap", "pop3"})
	must(t, "EnabledInboundIDs", err)
	if want := []int64{watched, pop}; !slices.Equal(got, want) {
		t.Errorf("EnabledInboundIDs(imap, pop3) = %v, want %v", got, want)
	}
	got, err = s.EnabledInboundIDs(ctx, nil)
	must(t, "EnabledInboundIDs of no protocol", err)
	if len(got) != 0 {
		t.Errorf("EnabledInboundIDs() = %v, want none", got)
	}
}
