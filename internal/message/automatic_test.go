package message

import (
	"net/textproto"
	"strings"
	"testing"
)

func TestAutomatic(t *testing.T) {
	tests := []struct {
		name   string
		header string
		from   string
		want   string // substring of the reason; "" for a person
	}{
		{"a person", "Subject: Hello\r\n", "anna@example.com", ""},
		{"Auto-Submitted no", "Auto-Submitted: no\r\n", "anna@example.com", ""},
		{"Auto-Submitted auto-replied", "Auto-Submitted: auto-replied; owner-email=\"x@example.com\"\r\n", "anna@example.com", "Auto-Submitted: auto-replied"},
		{"Auto-Submitted auto-generated", "Auto-Submitted: Auto-Generated\r\n", "shop@example.com", "Auto-Submitted: auto-generated"},
		{"Precedence bulk", "Precedence: bulk\r\n", "news@example.com", "Precedence: bulk"},
		{"Precedence auto_reply", "Precedence: auto_reply\r\n", "anna@example.com", "Precedence: auto_reply"},
		{"Precedence first-class", "Precedence: first-class\r\n", "anna@example.com", ""},
		{"X-Autoreply", "X-Autoreply: yes\r\n", "anna@example.com", "X-Autoreply"},
		{"X-Autorespond", "X-Autorespond: vacation\r\n", "anna@example.com", "X-Autorespond"},
		{"Outlook's X-Auto-Response-Suppress on a normal mail", "X-Auto-Response-Suppress: All\r\n", "anna@example.com", ""},
		{"List-Id", "List-Id: Users <users.lists.example.com>\r\n", "anna@example.com", "List-Id"},
		{"List-Unsubscribe", "List-Unsubscribe: <mailto:unsub@example.com>\r\n", "news@example.com", "List-Unsubscribe"},
		{"a DSN", "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n", "mail@example.com", "delivery status"},
		{"a read receipt", "Content-Type: multipart/report; report-type=\"disposition-notification\"; boundary=b\r\n", "anna@example.com", "read receipt"},
		{"a broken DSN content type", "Content-Type: multipart/report; report-type=delivery-status; boundary=\r\n", "mail@example.com", "delivery status"},
		{"another report", "Content-Type: multipart/mixed; boundary=b\r\n", "anna@example.com", ""},
		{"empty Return-Path", "Return-Path: <>\r\n", "anna@example.com", "empty Return-Path"},
		{"MAILER-DAEMON", "", "MAILER-DAEMON@mx.example.com", "sender MAILER-DAEMON"},
		{"postmaster", "", "postmaster@example.com", "sender"},
		{"no-reply with a tag", "", "no-reply+12345@shop.example", "sender"},
		{"noreply variant", "", "noreply-billing@shop.example", "sender"},
		{"do_not_reply", "", "Do_Not_Reply@shop.example", "sender"},
		{"a person called Norbert", "", "norbert@example.com", ""},
		{"no sender", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Header([]byte(tt.header + "\r\nbody\r\n"))
			got := Automatic(h, tt.from)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("Automatic = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	h := Header([]byte("From: a@example.com\nSubject: Hi\n\nList-Id: not a header\n"))
	if h.Get("Subject") != "Hi" || h.Get("List-Id") != "" {
		t.Errorf("Header = %v", h)
	}
	// A broken field ends the header, keeping what came before.
	h = Header([]byte("Subject: Hi\r\nbroken line without colon\r\nList-Id: x\r\n\r\n"))
	if h.Get("Subject") != "Hi" {
		t.Errorf("Header of a broken block = %v", h)
	}
	if h := Header(nil); h == nil || len(h) != 0 {
		t.Errorf("Header(nil) = %v", h)
	}
	var _ textproto.MIMEHeader = Header(nil)
}
