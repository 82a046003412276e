package web

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// TestFromAddressFormLabels: the From address form calls its email field what it is, and
// the list's column too; the name shown to customers is the "Display name".
func TestFromAddressFormLabels(t *testing.T) {
	f := newFixture(t)
	if _, err := f.st.AddFromAddress(context.Background(), store.FromAddress{MailboxID: f.outbound.ID, Address: "sales@example.com", DisplayName: "Example Sales"}); err != nil {
		t.Fatal(err)
	}
	p := f.signIn(t, "admin").get(fmt.Sprintf("/mailboxes/%d/from-addresses", f.outbound.ID))
	label := regexp.MustCompile(`<label for="address">([^<]*)</label>`).FindStringSubmatch(p.body)
	if label == nil || label[1] != "Email address" {
		t.Errorf("the email field is labelled %q, want \"Email address\"", label)
	}
	if !strings.Contains(p.body, `<label for="display_name">Display name</label>`) {
		t.Errorf("the display name field lost its label:\n%s", p.body)
	}
	if !strings.Contains(p.body, "<th>Email address</th><th>Display name</th>") {
		t.Errorf("the list's columns are not Email address and Display name:\n%s", p.body)
	}
}
