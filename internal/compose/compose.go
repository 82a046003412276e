// Package compose holds what an agent writes a reply with, besides the reply itself:
// canned responses (templates offered on every work item, or on one queue's), signatures
// (of a From address or of a queue) and the fields they are filled with. Both are
// text/template sources with the fixed fields of Vars, checked when they are saved
// (automsg.Fill, the renderer of the automatic messages), so that a misspelt field is
// found by the admin who wrote it and never by an agent.
//
// Signature precedence: the signature of the From address the reply is sent from wins
// over the signature of the work item's queue; with neither, the reply has none.
package compose

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/automsg"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
)

// Vars are the fields a canned response or a signature may use, as {{.CustomerName}}.
type Vars struct {
	CustomerName    string // the customer's name, or their address when they gave none
	CustomerAddress string
	WorkItem        int64  // the work item's number
	Queue           string // the work item's queue
	AgentName       string // the agent writing: their display name, else their user name
	Subject         string // the conversation's subject, without "Re:"
}

// FieldNames lists the fields of Vars, for the admin pages and error messages.
var FieldNames = []string{"CustomerName", "CustomerAddress", "WorkItem", "Queue", "AgentName", "Subject"}

// sample is what a template is rendered with when it is saved.
var sample = Vars{CustomerName: "Ada Lovelace", CustomerAddress: "ada@example.org", WorkItem: 42, Queue: "Support",
	AgentName: "Sam Agent", Subject: "My order"}

const (
	maxNameRunes = 100
	maxBodyBytes = 32 << 10
	maxSigBytes  = 4 << 10
)

// ErrInvalid is wrapped by every validation error (as automsg.ErrInvalid).
var ErrInvalid = automsg.ErrInvalid

// VarsFor returns the fields of work item wi answered by agent.
func VarsFor(wi store.WorkItem, agent store.User) Vars {
	name := strings.TrimSpace(wi.FromName)
	if name == "" {
		name = wi.FromAddr
	}
	agentName := strings.TrimSpace(agent.DisplayName)
	if agentName == "" {
		agentName = agent.Username
	}
	return Vars{CustomerName: name, CustomerAddress: wi.FromAddr, WorkItem: wi.ID, Queue: wi.QueueName,
		AgentName: agentName, Subject: message.Topic(wi.Subject)}
}

// ValidateResponse checks a canned response's name and body; the error says what to fix.
func ValidateResponse(name, body string) error {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty: give the template a name agents recognise, like \"Refund issued\"", ErrInvalid)
	case utf8.RuneCountInString(name) > maxNameRunes:
		return fmt.Errorf("%w: the name is longer than %d characters", ErrInvalid, maxNameRunes)
	case strings.ContainsAny(name, "\r\n"):
		return fmt.Errorf("%w: the name must be one line", ErrInvalid)
	case strings.TrimSpace(body) == "":
		return fmt.Errorf("%w: the text is empty: write what the agent inserts into the reply", ErrInvalid)
	case len(body) > maxBodyBytes:
		return fmt.Errorf("%w: the text is longer than %d KB", ErrInvalid, maxBodyBytes>>10)
	}
	_, err := automsg.Fill("text", body, sample, FieldNames)
	return err
}

// ValidateSignature checks a signature's text.
func ValidateSignature(body string) error {
	switch {
	case strings.TrimSpace(body) == "":
		return fmt.Errorf("%w: the signature is empty: write it, for example Kind regards, {{.AgentName}}", ErrInvalid)
	case len(body) > maxSigBytes:
		return fmt.Errorf("%w: the signature is longer than %d KB", ErrInvalid, maxSigBytes>>10)
	}
	_, err := automsg.Fill("signature", body, sample, FieldNames)
	return err
}

// Render fills a canned response's text with v.
func Render(body string, v Vars) (string, error) {
	return automsg.Fill("text", body, v, FieldNames)
}

// Offered returns the canned responses offered on a work item of queueID: the global
// ones and the queue's, in the order of list (global first).
func Offered(list []store.ResponseTemplate, queueID int64) []store.ResponseTemplate {
	var out []store.ResponseTemplate
	for _, t := range list {
		if t.QueueID == 0 || (queueID != 0 && t.QueueID == queueID) {
			out = append(out, t)
		}
	}
	return out
}

// PickSignature returns the signature of a reply sent from address on a work item of
// queueID: the address's, else the queue's; false when there is none.
func PickSignature(list []store.Signature, address string, queueID int64) (store.Signature, bool) {
	var queue *store.Signature
	for i, g := range list {
		switch {
		case g.Address != "" && address != "" && strings.EqualFold(g.Address, strings.TrimSpace(address)):
			return g, true
		case g.Address == "" && queueID != 0 && g.QueueID == queueID:
			queue = &list[i]
		}
	}
	if queue != nil {
		return *queue, true
	}
	return store.Signature{}, false
}

// RenderSignature fills a signature with v; an empty result is no signature.
func RenderSignature(g store.Signature, v Vars) (string, error) {
	s, err := automsg.Fill("signature", g.Body, v, FieldNames)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(s, " \t\r\n"), nil
}

// Append adds a rendered signature to a reply's text, after a blank line; an empty
// signature leaves the text as it is.
func Append(text, signature string) string {
	if signature == "" {
		return text
	}
	return strings.TrimRight(text, " \t\r\n") + "\n\n" + signature + "\n"
}

// ErrNoFrom is returned by ResolveFrom when no address can send the reply.
var ErrNoFrom = errors.New("no From address")

// ResolveFrom returns the address a reply with From from goes out from: from itself
// when it is one of choices, else (from "") the default choice.
func ResolveFrom(from string, choices []outbound.FromChoice) (string, error) {
	from = strings.TrimSpace(from)
	for _, c := range choices {
		if (from == "" && c.Default) || (from != "" && strings.EqualFold(c.Address, from)) {
			return c.Address, nil
		}
	}
	return "", ErrNoFrom
}

// Signature returns the rendered signature of a reply on wi by agent sent from address
// ("" when there is none).
func Signature(list []store.Signature, address string, wi store.WorkItem, agent store.User) (string, error) {
	g, ok := PickSignature(list, address, wi.QueueID)
	if !ok {
		return "", nil
	}
	return RenderSignature(g, VarsFor(wi, agent))
}
