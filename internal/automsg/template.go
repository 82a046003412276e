// Package automsg writes the automatic messages postroom sends on its own: the
// acknowledgement of a new conversation (per queue, one text for open hours, one for
// closed hours and one for holidays of the queue's business calendar) and the over-size
// notice. Their texts are templates an admin edits (text/template with the fields of
// Vars); the messages go out with Auto-Submitted: auto-replied and an empty envelope
// sender, never to a program's mail, and at most Limits allow per address.
package automsg

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/template"
)

// Template names. The over-size notice is global (queue 0); the acknowledgements belong
// to a queue.
const (
	NameOversize       = "oversize"
	NameAckOpen        = "acknowledgement_open"
	NameAckClosed      = "acknowledgement_closed"
	NameAckHoliday     = "acknowledgement_holiday"
	maxTemplateBytes   = 32 << 10
	maxSubjectTemplate = 500
)

// Hours of a queue's business calendar at an instant, which choose the acknowledgement.
const (
	HoursOpen    = "open"
	HoursClosed  = "closed"
	HoursHoliday = "holiday"
)

// GlobalNames are the templates that belong to no queue.
var GlobalNames = []string{NameOversize}

// QueueNames are a queue's acknowledgement templates, in the order pages show them.
var QueueNames = []string{NameAckOpen, NameAckClosed, NameAckHoliday}

// AckName returns the acknowledgement template for hours.
func AckName(hours string) string {
	switch hours {
	case HoursClosed:
		return NameAckClosed
	case HoursHoliday:
		return NameAckHoliday
	}
	return NameAckOpen
}

// Vars are the fields a template may use, as {{.CustomerName}}.
type Vars struct {
	CustomerName    string // the sender's name, or their address when they gave none
	CustomerAddress string
	WorkItem        int64  // the work item's number
	Queue           string // the queue's name
	Mailbox         string // the mailbox's name the customer wrote to
	MailboxAddress  string
	Subject         string // the customer's subject, without "Re:"
	Size            string // over-size notice: the message's size ("6.1 MB")
	MaxSize         string // over-size notice: the mailbox's Max size ("5 MB")
}

// FieldNames lists the fields of Vars, for the admin page.
var FieldNames = []string{"CustomerName", "CustomerAddress", "WorkItem", "Queue", "Mailbox", "MailboxAddress", "Subject", "Size", "MaxSize"}

// Text is a template's subject and body (text/template sources).
type Text struct {
	Subject string
	Body    string
}

// Default returns the text shipped for a template name. The shipped subjects do not
// begin with "Re:": an automatic message must not look like an agent's answer in the
// customer's inbox (it still threads, by In-Reply-To and References).
func Default(name string) Text {
	switch name {
	case NameOversize:
		return Text{Subject: "Not received in full: {{.Subject}}", Body: "Hello {{.CustomerName}},\n\n" +
			"thank you for your message \"{{.Subject}}\" to {{.MailboxAddress}}. It is {{.Size}}, larger than the {{.MaxSize}} we can accept, " +
			"so it has not reached our team in full.\n\n" +
			"Please send it again with smaller attachments: for example, share large files as a link, " +
			"or split them over several emails.\n\n" +
			"Your message has been kept, and a supervisor has been told.\n\n" +
			"This is an automatic message from {{.Mailbox}}.\n"}
	case NameAckClosed:
		return Text{Subject: "Request received [#{{.WorkItem}}]: {{.Subject}}", Body: "Hello {{.CustomerName}},\n\n" +
			"thank you for your message. Our {{.Queue}} team is out of the office now; we will answer " +
			"as soon as we are back. Your request has the number {{.WorkItem}}: keep it in the subject when you write again.\n\n" +
			"This is an automatic message from {{.Mailbox}}: there is no need to reply to it.\n"}
	case NameAckHoliday:
		return Text{Subject: "Request received [#{{.WorkItem}}]: {{.Subject}}", Body: "Hello {{.CustomerName}},\n\n" +
			"thank you for your message. Our office is closed today for a holiday; the {{.Queue}} team " +
			"will answer on our next working day. Your request has the number {{.WorkItem}}.\n\n" +
			"This is an automatic message from {{.Mailbox}}: there is no need to reply to it.\n"}
	default:
		return Text{Subject: "Request received [#{{.WorkItem}}]: {{.Subject}}", Body: "Hello {{.CustomerName}},\n\n" +
			"thank you for your message: it has reached our {{.Queue}} team, who will answer soon. " +
			"Your request has the number {{.WorkItem}}.\n\n" +
			"This is an automatic message from {{.Mailbox}}: there is no need to reply to it.\n"}
	}
}

// KnownName reports whether name is a template name, and whether it belongs to a queue.
func KnownName(name string) (known, perQueue bool) {
	for _, n := range QueueNames {
		if n == name {
			return true, true
		}
	}
	for _, n := range GlobalNames {
		if n == name {
			return true, false
		}
	}
	return false, false
}

// sample is what Validate renders a template with, so that a misspelt field is found when
// the template is saved rather than when a customer writes.
var sample = Vars{CustomerName: "Ada Lovelace", CustomerAddress: "ada@example.org", WorkItem: 42, Queue: "Support",
	Mailbox: "support", MailboxAddress: "support@example.com", Subject: "My order", Size: "6.1 MB", MaxSize: "5 MB"}

// ErrInvalid is wrapped by the errors of Validate.
var ErrInvalid = errors.New("invalid template")

// Validate checks a template: both parts parse and render with every field of Vars;
// the error says where and what is wrong, and which fields exist.
func Validate(t Text) error {
	if strings.TrimSpace(t.Subject) == "" {
		return fmt.Errorf("%w: the subject is empty: write one, for example Re: {{.Subject}}", ErrInvalid)
	}
	if len(t.Subject) > maxSubjectTemplate {
		return fmt.Errorf("%w: the subject is longer than %d characters", ErrInvalid, maxSubjectTemplate)
	}
	if strings.ContainsAny(t.Subject, "\r\n") {
		return fmt.Errorf("%w: the subject must be one line", ErrInvalid)
	}
	if strings.TrimSpace(t.Body) == "" {
		return fmt.Errorf("%w: the body is empty: write the message the customer receives", ErrInvalid)
	}
	if len(t.Body) > maxTemplateBytes {
		return fmt.Errorf("%w: the body is longer than %d KB", ErrInvalid, maxTemplateBytes>>10)
	}
	if _, err := render("subject", t.Subject, sample); err != nil {
		return err
	}
	_, err := render("body", t.Body, sample)
	return err
}

// Render fills t with v: the subject (one line) and the body.
func Render(t Text, v Vars) (subject, body string, err error) {
	if subject, err = render("subject", t.Subject, v); err != nil {
		return "", "", err
	}
	if body, err = render("body", t.Body, v); err != nil {
		return "", "", err
	}
	subject = strings.Join(strings.Fields(subject), " ")
	return subject, body, nil
}

func render(part, src string, v Vars) (string, error) { return Fill(part, src, v, FieldNames) }

// Fill renders src, a text/template source, with data (a struct whose fields are named
// in fields). A misspelt field or a syntax error is an error wrapping ErrInvalid that
// says where, what is wrong and which fields exist, for the admin who wrote the template.
// part names what src is ("subject", "body", "signature").
func Fill(part, src string, data any, fields []string) (string, error) {
	tpl, err := template.New(part).Option("missingkey=error").Parse(src)
	if err != nil {
		return "", fmt.Errorf("%w: the %s does not parse: %s (write fields as {{.%s}}; fields: %s)",
			ErrInvalid, part, strings.TrimPrefix(err.Error(), "template: "), fields[0], strings.Join(fields, ", "))
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%w: the %s cannot be filled in: %s (fields: %s)",
			ErrInvalid, part, strings.TrimPrefix(err.Error(), "template: "), strings.Join(fields, ", "))
	}
	return b.String(), nil
}
