package message

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// corpusCase is what an agent sees of one message of testdata/corpus: each file is one odd
// or broken shape of real mail, written for postroom (not taken from another project).
type corpusCase struct {
	unparsed    bool // a hopeless shape: kept raw and flagged, not counted as parsed
	subject     string
	fromName    string
	fromAddr    string
	to, cc      string
	replyTo     string
	text        []string // substrings of TextBody
	html        string   // substring of HTMLBody, "" for none
	attachments []string // attachment file names, in order
}

var corpus = map[string]corpusCase{
	"leading-whitespace-lines": {
		subject: "Parcel 881 arrived damaged", fromName: "Ana Lima", fromAddr: "ana@example.org",
		to: "support@shop.example", text: []string{"Hello, parcel 881 arrived with a broken lid."},
	},
	"bom-before-header": {
		subject: "Return label", fromName: "Björn", fromAddr: "bjorn@example.se",
		to: "support@shop.example", text: []string{"Hej, could you send me a return label? Tack, Björn"},
	},
	"empty-mime-part": {
		subject: "Invoice 77", fromName: "Carl Berg", fromAddr: "carl@example.org",
		to: "support@shop.example", text: []string{"The invoice 77 is attached."},
		attachments: []string{"invoice-77.pdf"},
	},
	"truncated-nested-multipart": {
		subject: "Photos of the damage", fromName: "Dora Kim", fromAddr: "dora@example.org",
		to: "support@shop.example", text: []string{"Two photos of the damaged kettle are attached."},
		html:        "<b>damaged</b>",
		attachments: []string{"photo-1.jpg", "photo-2.jpg"},
	},
	"inner-boundary-begins-with-outer": {
		subject: "Shipping label", fromName: "Emil Roth", fromAddr: "emil@example.de",
		to: "support@shop.example", text: []string{"Here is the shipping label you asked for."},
		html: "<p>Here is the shipping label", attachments: []string{"label.pdf"},
	},
	"body-line-begins-with-boundary": {
		subject: "Export format", fromName: "Farid Haddad", fromAddr: "farid@example.org",
		to:          "support@shop.example",
		text:        []string{"like this:\n--sep-- end of record 1\n--sep-2 start of record 2\nThe export is attached."},
		attachments: []string{"export.csv"},
	},
	"rfc2231-boundary-continuation": {
		subject: "Signed contract", fromName: "Greta Nilsson", fromAddr: "greta@example.se",
		to: "support@shop.example", text: []string{"The signed contract is attached."},
		attachments: []string{"contrat-signé.pdf"},
	},
	"rfc2231-boundary-charset-alias": {
		subject: "CV", fromName: "Hugo Leclerc", fromAddr: "hugo@example.fr",
		to: "support@shop.example", text: []string{"Voici mon CV, merci d'avance. À bientôt."},
		attachments: []string{"résumé.pdf"},
	},
	"encoded-word-raw-8bit": {
		subject: "Café crème brûlée", fromName: "Jörg Müller", fromAddr: "joerg@example.de",
		to: "support@shop.example", text: []string{"The crème brûlée set arrived without its burner."},
	},
	"encoded-word-utf7": {
		subject: "Présentation du devis (réf. 12)", fromName: "Renée Dubois", fromAddr: "renee@example.fr",
		to: "support@shop.example", text: []string{"Bonjour, le devis coûte 12 €."},
	},
	"encoded-word-in-quoted-name": {
		subject: "Address change", fromName: "Müller, Jörg", fromAddr: "joerg@example.de",
		to:   "Renée Dubois <renee@example.fr>, support@shop.example",
		text: []string{"Please use my new address from now on."},
	},
	"encoded-word-broken-charset": {
		subject: "Facture impayée — rappel", fromName: "François Léger", fromAddr: "francois@example.fr",
		to: "Zé Service <support@shop.example>", text: []string{"La facture 512 est toujours impayée."},
	},
	"encoded-words-split-character": {
		subject: "Réclamation colis", fromName: "Ines Costa", fromAddr: "ines@example.pt",
		to: "support@shop.example", text: []string{"The parcel never came."},
	},
	"header-raw-latin1": {
		subject: "Réclamation: colis endommagé", fromName: "René Château", fromAddr: "rene@example.fr",
		to: "Service clientèle <support@shop.example>", text: []string{"Le colis est arrivé abîmé."},
	},
	"header-raw-windows-1252": {
		subject: "“Urgent” – refund of 20 €", fromName: "Zoë O’Brien", fromAddr: "zoe@example.ie",
		to: "support@shop.example", text: []string{"I am still waiting for my 20 € refund – please check."},
	},
	"address-comments": {
		subject: "Testing comments", fromAddr: "pete@silly.test", replyTo: "pete@silly.test",
		to:   "Support desk <support@shop.example>",
		cc:   "Pete <pete@silly.test>, John Doe <jdoe@one.test>",
		text: []string{"Comments are allowed almost anywhere."},
	},
	"mixed-line-endings": {
		subject: "Mixed line ends", fromName: "Jan Novak", fromAddr: "jan@example.cz",
		to: "support@shop.example", text: []string{"First line.\nSecond line."},
		attachments: []string{"orders.csv"},
	},
	"multipart-boundary-never-used": {
		unparsed: true, subject: "Boundary never used", fromName: "Karl Weber", fromAddr: "karl@example.de",
		to: "support@shop.example",
	},
	"header-block-binary": {
		unparsed: true, subject: "found later",
	},
}

// TestCorpus parses every message of testdata/corpus and checks what an agent would see
// (subject, sender, recipients, body text, attachment names), that the raw bytes are left
// as they were, and that every file has a case. It logs how many parse fully:
//
//	go test -run TestCorpus -v ./internal/message/
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	full := 0
	for _, file := range files {
		shape := strings.TrimSuffix(filepath.Base(file), ".eml")
		want, ok := corpus[shape]
		if !ok {
			t.Errorf("%s: no expected result for this corpus file", shape)
			continue
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		keep := bytes.Clone(raw)
		m := Parse(raw)
		if !bytes.Equal(raw, keep) {
			t.Errorf("%s: Parse changed the raw bytes", shape)
		}
		var got []string
		for _, a := range m.Attachments {
			got = append(got, a.Filename)
			if data := content(t, a); int64(len(data)) != a.Size {
				t.Errorf("%s: attachment %q has %d bytes, Size says %d", shape, a.Filename, len(data), a.Size)
			}
		}
		var bad []string
		check := func(what, got, want string) {
			if got != want {
				bad = append(bad, fmt.Sprintf("%s = %q, want %q", what, got, want))
			}
		}
		if m.Unparsed != want.unparsed {
			bad = append(bad, fmt.Sprintf("Unparsed = %v (%s), want %v", m.Unparsed, m.ParseError, want.unparsed))
		}
		check("Subject", m.Subject, want.subject)
		check("FromName", m.FromName, want.fromName)
		check("FromAddr", m.FromAddr, want.fromAddr)
		check("To", m.To, want.to)
		check("Cc", m.Cc, want.cc)
		check("ReplyTo", m.ReplyTo, want.replyTo)
		for _, s := range want.text {
			if !strings.Contains(m.TextBody, s) {
				bad = append(bad, fmt.Sprintf("TextBody = %q, want it to contain %q", m.TextBody, s))
			}
		}
		if (want.html == "") != (m.HTMLBody == "") || !strings.Contains(m.HTMLBody, want.html) {
			bad = append(bad, fmt.Sprintf("HTMLBody = %q, want it to contain %q", m.HTMLBody, want.html))
		}
		if !slices.Equal(got, want.attachments) {
			bad = append(bad, fmt.Sprintf("attachments = %q, want %q", got, want.attachments))
		}
		for _, b := range bad {
			t.Errorf("%s: %s", shape, b)
		}
		if len(bad) == 0 && !m.Unparsed {
			full++
		}
	}
	t.Logf("corpus: %d of %d parse fully", full, len(files))
}
