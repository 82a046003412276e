package automsg_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/automsg"
)

func TestDefaultsAreValid(t *testing.T) {
	for _, name := range append(append([]string{}, automsg.GlobalNames...), automsg.QueueNames...) {
		if err := automsg.Validate(automsg.Default(name)); err != nil {
			t.Errorf("default %s: %v", name, err)
		}
	}
}

// TestValidateRefusesBadTemplates: a syntax error or an unknown field is refused with a
// message saying what is wrong and which fields exist.
func TestValidateRefusesBadTemplates(t *testing.T) {
	for _, tc := range []struct {
		text automsg.Text
		want string
	}{
		{automsg.Text{Subject: "Re: {{.Subject}", Body: "x"}, "the subject does not parse"},
		{automsg.Text{Subject: "Re: x", Body: "Hello {{.CustomerNme}}"}, "the body cannot be filled in"},
		{automsg.Text{Subject: "Re: x", Body: "{{if .Queue}}open"}, "the body does not parse"},
		{automsg.Text{Subject: "", Body: "x"}, "the subject is empty"},
		{automsg.Text{Subject: "x", Body: "  "}, "the body is empty"},
	} {
		err := automsg.Validate(tc.text)
		if err == nil || !errors.Is(err, automsg.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.text, err, tc.want)
			continue
		}
		if strings.Contains(tc.want, "parse") || strings.Contains(tc.want, "filled") {
			if !strings.Contains(err.Error(), "CustomerName") {
				t.Errorf("the error does not list the fields: %v", err)
			}
		}
	}
}

func TestRender(t *testing.T) {
	subject, body, err := automsg.Render(automsg.Default(automsg.NameAckClosed),
		automsg.Vars{CustomerName: "Ada", WorkItem: 17, Queue: "Billing", Mailbox: "support", Subject: "Invoice"})
	if err != nil {
		t.Fatal(err)
	}
	if subject != "Request received [#17]: Invoice" || !strings.Contains(body, "Hello Ada,") || !strings.Contains(body, "Billing team is out of the office") ||
		!strings.Contains(body, "number 17") {
		t.Errorf("rendered %q\n%s", subject, body)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := automsg.DefaultLimits.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := automsg.DefaultLimits
	bad.PerAddress = 0
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "per_address") {
		t.Errorf("Validate(per_address 0) = %v", err)
	}
}
