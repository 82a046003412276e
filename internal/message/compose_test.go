package message

import (
	"bytes"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

func TestTopic(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Order 1234", "Order 1234"},
		{"Re: Re: Re: Order 1234", "Order 1234"},
		{"RE: AW: Fwd: FW: WG: re:Order 1234", "Order 1234"},
		{"  Re[3]:  Aw(2): Order 1234 ", "Order 1234"},
		{"Regarding your order", "Regarding your order"},
		{"Tracking number: 12", "Tracking number: 12"},
		{"Order: Re: 12", "Order: Re: 12"},
		{"Re:", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Topic(tt.in); got != tt.want {
			t.Errorf("Topic(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReplySubject(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Order 1234", "Re: Order 1234"},
		{"Re: Order 1234", "Re: Order 1234"},
		{"Re: Re: Order 1234", "Re: Order 1234"},
		{"RE: re: Re:Order 1234", "Re: Order 1234"},
		{"  re :  spaced", "Re: spaced"},
		{"Fwd: Order 1234", "Re: Fwd: Order 1234"},
		{"Re: Fwd: Re: Order", "Re: Fwd: Re: Order"},
		{"Regarding your order", "Re: Regarding your order"},
		{"AW: Re: AW: Order 1234", "Re: Order 1234"},
		{"Re[2]: SV: Order 1234", "Re: Order 1234"},
		{"Aware of the order", "Re: Aware of the order"},
		{"", "Re:"},
	}
	for _, tt := range tests {
		if got := ReplySubject(tt.in); got != tt.want {
			t.Errorf("ReplySubject(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var agent = mail.Address{Name: "Shop Support", Address: "support@shop.example"}

func TestReplyDraft(t *testing.T) {
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

	t.Run("to Reply-To, quoted original", func(t *testing.T) {
		orig := Parse(readEML(t, "plain.eml"))
		d := ReplyDraft(orig, agent, "Your parcel is on its way.\n", now)
		if len(d.To) != 1 || d.To[0].Address != "billing@example.com" {
			t.Errorf("To = %v, want the Reply-To address", d.To)
		}
		if d.From != agent || !d.Date.Equal(now) {
			t.Errorf("From/Date = %v %v", d.From, d.Date)
		}
		if d.Subject != "Re: My order 1234 has not arrived" {
			t.Errorf("Subject = %q", d.Subject)
		}
		if d.InReplyTo != "order-1234.1@mail.example.com" || !slices.Equal(d.References, []string{"order-1234.1@mail.example.com"}) {
			t.Errorf("InReplyTo %q References %q", d.InReplyTo, d.References)
		}
		want := "Your parcel is on its way.\n\nOn Tue, 3 Mar 2026 09:15 +0100, Alice Martin <alice@example.com> wrote:\n> Hello,\n>\n> I ordered a kettle two weeks ago (order 1234) and it has not arrived.\n"
		if !strings.HasPrefix(d.Text, want) {
			t.Errorf("Text = %q\nwant prefix %q", d.Text, want)
		}
		if !strings.HasSuffix(d.Text, "> Alice\n") {
			t.Errorf("Text = %q, want the whole original quoted", d.Text)
		}
	})

	t.Run("to sender, references extended, Re not stacked", func(t *testing.T) {
		orig := Parse(readEML(t, "reply.eml"))
		d := ReplyDraft(orig, agent, "We refunded you.", now)
		if len(d.To) != 1 || d.To[0] != (mail.Address{Name: "Alice Martin", Address: "alice@example.com"}) {
			t.Errorf("To = %v", d.To)
		}
		if d.Subject != "Re: My order 1234 has not arrived" {
			t.Errorf("Subject = %q", d.Subject)
		}
		wantRefs := []string{"order-1234.1@mail.example.com", "order-1234.2@shop.example", "order-1234.3@mail.example.com"}
		if d.InReplyTo != "order-1234.3@mail.example.com" || !slices.Equal(d.References, wantRefs) {
			t.Errorf("InReplyTo %q References %q, want %q", d.InReplyTo, d.References, wantRefs)
		}
		// An already quoted line gets ">" without a space, as mail clients nest quotes.
		if !strings.Contains(d.Text, "\n>> We are looking into it.\n") {
			t.Errorf("Text = %q", d.Text)
		}
	})

	t.Run("In-Reply-To only parent, references capped", func(t *testing.T) {
		d := ReplyDraft(store.Message{FromAddr: "x@example.com", MessageID: "m@x", InReplyTo: "p@x"}, agent, "ok", now)
		if !slices.Equal(d.References, []string{"p@x", "m@x"}) {
			t.Errorf("References = %q, want parent's In-Reply-To then its Message-ID (RFC 5322 §3.6.4)", d.References)
		}
		var refs []string
		for i := range 40 {
			refs = append(refs, fmt.Sprintf("r%d@x", i))
		}
		d = ReplyDraft(store.Message{FromAddr: "x@example.com", MessageID: "last@x", References: refs}, agent, "ok", now)
		if len(d.References) != maxReferences || d.References[0] != "r0@x" || d.References[maxReferences-1] != "last@x" || d.References[maxReferences-2] != "r39@x" {
			t.Errorf("References = %q: want %d, first and latest kept in order", d.References, maxReferences)
		}
		if d.Text != "ok" {
			t.Errorf("Text = %q: nothing to quote", d.Text)
		}
	})
}

func TestComposeRoundTrip(t *testing.T) {
	date := time.Date(2026, 3, 10, 9, 30, 0, 0, time.FixedZone("", 3600))
	long := strings.Repeat("This line is long enough to need a soft line break in quoted-printable. ", 3)
	d := Draft{
		From:       mail.Address{Name: "Zoë Støre — Support", Address: "support@shop.example"},
		To:         []mail.Address{{Name: "Jörg Müller", Address: "joerg@example.de"}},
		Cc:         []mail.Address{{Name: "Smith, Carol", Address: "carol@example.com"}, {Address: "bob@example.com"}},
		Subject:    ReplySubject("Re: Problème avec ma commande — urgent"),
		InReplyTo:  "umlaut-1@example.de",
		References: []string{"root@example.de", "umlaut-1@example.de"},
		Text:       "Grüße zurück!\n\n" + long + "\nLast line = end.",
		Date:       date,
	}
	raw, m, err := Compose(d)
	if err != nil {
		t.Fatal(err)
	}

	// Wire format: CRLF only, no line over 78 characters, 7-bit headers with RFC 2047 words.
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
		t.Errorf("bare LF or CR in:\n%s", raw)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line longer than 78: %q", line)
		}
	}
	header, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	for i := range len(header) {
		if header[i] >= 0x80 {
			t.Fatalf("8-bit byte in header:\n%s", header)
		}
	}
	for _, want := range []string{"MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable", "Subject: =?utf-8?", "In-Reply-To: <umlaut-1@example.de>", "References: <root@example.de> <umlaut-1@example.de>", "Date: Tue, 10 Mar 2026 09:30:00 +0100"} {
		if !strings.Contains(header, want) {
			t.Errorf("header lacks %q:\n%s", want, header)
		}
	}
	if !strings.HasPrefix(header, "Date: ") {
		t.Errorf("header does not start with Date:\n%s", header)
	}
	if !regexp.MustCompile(`(?m)^Message-ID: <[0-9a-f]{32}@shop\.example>\r?$`).MatchString(header) {
		t.Errorf("no generated Message-ID in:\n%s", header)
	}

	// The returned record and a fresh parse agree, and show what was written.
	again := Parse(raw)
	for _, got := range []store.Message{m, again} {
		if got.Unparsed {
			t.Fatalf("composed message unparsed: %s", got.ParseError)
		}
		if got.Subject != "Re: Problème avec ma commande — urgent" {
			t.Errorf("Subject = %q", got.Subject)
		}
		if got.FromName != "Zoë Støre — Support" || got.FromAddr != "support@shop.example" {
			t.Errorf("From = %q <%q>", got.FromName, got.FromAddr)
		}
		if got.To != "Jörg Müller <joerg@example.de>" || got.Cc != `"Smith, Carol" <carol@example.com>, bob@example.com` {
			t.Errorf("To = %q, Cc = %q", got.To, got.Cc)
		}
		if got.InReplyTo != "umlaut-1@example.de" || !slices.Equal(got.References, d.References) {
			t.Errorf("InReplyTo %q References %q", got.InReplyTo, got.References)
		}
		if !got.Date.Equal(date) {
			t.Errorf("Date = %v, want %v", got.Date, date)
		}
		if got.TextBody != d.Text+"\n" {
			t.Errorf("TextBody = %q\nwant %q", got.TextBody, d.Text+"\n")
		}
		if got.Size != int64(len(raw)) {
			t.Errorf("Size = %d, want %d", got.Size, len(raw))
		}
	}
	if m.Direction != store.Outbound || m.MessageID == "" || m.MessageID != again.MessageID {
		t.Errorf("Direction %q MessageID %q / %q", m.Direction, m.MessageID, again.MessageID)
	}
}

func TestComposeReplyToParsedMessage(t *testing.T) {
	orig := Parse(readEML(t, "reply.eml"))
	d := ReplyDraft(orig, agent, "Refund done.", time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC))
	d.MessageID = "fixed-id@shop.example"
	raw, m, err := Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageID != "fixed-id@shop.example" || m.Subject != "Re: My order 1234 has not arrived" {
		t.Errorf("MessageID %q Subject %q", m.MessageID, m.Subject)
	}
	want := []string{"order-1234.1@mail.example.com", "order-1234.2@shop.example", "order-1234.3@mail.example.com"}
	if !slices.Equal(m.References, want) || m.InReplyTo != "order-1234.3@mail.example.com" {
		t.Errorf("References %q InReplyTo %q", m.References, m.InReplyTo)
	}
	if !strings.Contains(m.TextBody, "Refund done.\n\nOn Sat, 7 Mar 2026 11:11 +0000, Alice Martin <alice@example.com> wrote:\n> Still nothing.") {
		t.Errorf("TextBody = %q", m.TextBody)
	}
	if !bytes.Contains(raw, []byte("\r\nTo: \"Alice Martin\" <alice@example.com>\r\n")) {
		t.Errorf("To header missing:\n%s", raw)
	}
}

func TestComposeRefusesBadDrafts(t *testing.T) {
	ok := Draft{From: agent, To: []mail.Address{{Address: "a@example.com"}}, Subject: "s", Text: "t"}
	tests := []struct {
		name string
		edit func(*Draft)
		want string
	}{
		{"no recipient", func(d *Draft) { d.To = nil }, "no recipient"},
		{"bad From", func(d *Draft) { d.From.Address = "not an address" }, "From:"},
		{"header injection in To", func(d *Draft) { d.To[0].Address = "a@example.com>\r\nBcc: x@evil.example" }, "To:"},
		{"bad Message-ID", func(d *Draft) { d.MessageID = "a b@c" }, "Message-ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			d.To = slices.Clone(ok.To)
			tt.edit(&d)
			if _, _, err := Compose(d); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}

	// Line breaks in a subject or name cannot add header fields.
	d := ok
	d.Subject = "Hello\r\nBcc: victim@evil.example"
	d.From.Name = "Support\r\nX-Injected: 1"
	raw, m, err := Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("\r\nBcc:")) || bytes.Contains(raw, []byte("\r\nX-Injected:")) {
		t.Errorf("header injected:\n%s", raw)
	}
	if m.Subject != "Hello Bcc: victim@evil.example" {
		t.Errorf("Subject = %q", m.Subject)
	}
	// Unsafe ids from a parsed message are left out instead of failing the reply.
	d = ok
	d.InReplyTo = "bad id>"
	d.References = []string{"ok@x", "not<ok@x"}
	raw, m, err = Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	if m.InReplyTo != "" || !slices.Equal(m.References, []string{"ok@x"}) || bytes.Contains(raw, []byte("In-Reply-To")) {
		t.Errorf("InReplyTo %q References %q", m.InReplyTo, m.References)
	}
}
