package compose

import (
	"errors"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

func TestValidateResponse(t *testing.T) {
	if err := ValidateResponse("Refund", "Hello {{.CustomerName}}, #{{.WorkItem}} from {{.AgentName}} in {{.Queue}}"); err != nil {
		t.Fatalf("a valid template: %v", err)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"", "x", "the name is empty"},
		{"A\nB", "x", "one line"},
		{"Refund", "  ", "the text is empty"},
		{"Refund", "Hello {{.Customer}}", "fields: CustomerName, CustomerAddress"},
		{"Refund", "Hello {{.CustomerName", "does not parse"},
	} {
		err := ValidateResponse(tc.name, tc.body)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateResponse(%q, %q) = %v, want an error saying %q", tc.name, tc.body, err, tc.want)
		}
	}
	if err := ValidateSignature("Regards, {{.Agent}}"); err == nil || !strings.Contains(err.Error(), "AgentName") {
		t.Errorf("ValidateSignature with a misspelt field = %v, want the list of fields", err)
	}
}

func TestRenderAndSignature(t *testing.T) {
	wi := store.WorkItem{ID: 7, FromName: "", FromAddr: "ada@example.org", QueueID: 2, QueueName: "Billing", Subject: "Re: RE: Invoice"}
	v := VarsFor(wi, store.User{Username: "sam"})
	got, err := Render("Hello {{.CustomerName}}, about {{.Subject}} (#{{.WorkItem}}) — {{.AgentName}}, {{.Queue}}", v)
	if err != nil || got != "Hello ada@example.org, about Invoice (#7) — sam, Billing" {
		t.Errorf("Render = %q, %v", got, err)
	}

	sigs := []store.Signature{
		{ID: 1, QueueID: 2, Body: "Billing team"},
		{ID: 2, Address: "Help@Example.com", Body: "Regards,\n{{.AgentName}}\n\n"},
	}
	if g, _ := PickSignature(sigs, "help@example.com", 2); g.ID != 2 {
		t.Errorf("the From address's signature must win over the queue's, got %+v", g)
	}
	if g, _ := PickSignature(sigs, "other@example.com", 2); g.ID != 1 {
		t.Errorf("without an address signature the queue's applies, got %+v", g)
	}
	if _, ok := PickSignature(sigs, "other@example.com", 3); ok {
		t.Errorf("another queue and address: want no signature")
	}
	s, err := Signature(sigs, "help@example.com", wi, store.User{Username: "sam", DisplayName: "Sam Agent"})
	if err != nil || s != "Regards,\nSam Agent" {
		t.Errorf("Signature = %q, %v", s, err)
	}
	if got := Append("Thanks!\n\n", s); got != "Thanks!\n\nRegards,\nSam Agent\n" {
		t.Errorf("Append = %q", got)
	}
	if got := Append("Thanks!", ""); got != "Thanks!" {
		t.Errorf("Append without signature = %q", got)
	}
}
