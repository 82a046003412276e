package routing

import (
	"errors"
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// sampleFacts is a customer's message to the "Support DE" mailbox.
func sampleFacts() Facts {
	return Facts{
		MailboxID:   7,
		MailboxName: "Support DE",
		From:        "Anna.Schmidt@Kunde.example",
		Recipients:  []string{"support@shop.example", "billing@shop.example"},
		Subject:     "Rechnung 2024-118 falsch",
		Body:        "Guten Tag, meine Rechnung ist falsch. Bitte korrigieren Sie den Betrag.\n\nMit freundlichen Grüßen\nAnna",
		Header: textproto.MIMEHeader{
			"X-Priority": {"1 (Highest)"},
			"X-Origin":   {"=?utf-8?q?M=C3=BCnchen?="},
		},
		HasAttachment: true,
		Language:      "de",
	}
}

// fixedDetector answers lang and counts its calls.
type fixedDetector struct {
	lang  string
	calls *atomic.Int32
}

func (d fixedDetector) Detect(string) string { d.calls.Add(1); return d.lang }

func cond(field, op, value string) Condition { return Condition{Field: field, Op: op, Value: value} }

func mustCompile(t testing.TB, rules ...Rule) *RuleSet {
	t.Helper()
	rs, err := Compile(rules)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return rs
}

func TestConditions(t *testing.T) {
	tests := []struct {
		name string
		c    Condition
		want bool
		seen string // substring of what Explain shows
	}{
		{"mailbox by name, any case", cond("mailbox", "equals", "support de"), true, "Support DE (7)"},
		{"mailbox by number", cond("mailbox", "in", "3, 7"), true, ""},
		{"another mailbox", cond("mailbox", "equals", "Sales"), false, "Support DE"},
		{"mailbox contains", cond("mailbox", "contains", "support"), true, ""},
		{"sender equals ignores case", cond("sender", "equals", "anna.schmidt@kunde.example"), true, "Anna.Schmidt@Kunde.example"},
		{"sender in list", cond("sender", "in", "x@y.example, anna.schmidt@kunde.example"), true, ""},
		{"sender starts_with", cond("sender", "starts_with", "anna."), true, ""},
		{"sender regex", cond("sender", "regex", `^[a-z.]+@kunde\.example$`), true, "Anna.Schmidt@Kunde.example"},
		{"sender_domain equals", cond("sender_domain", "equals", "KUNDE.example"), true, "kunde.example"},
		{"sender_domain ends_with", cond("sender_domain", "ends_with", ".org"), false, "kunde.example"},
		{"recipients: one of To and Cc", cond("recipients", "equals", "billing@shop.example"), true, "billing@shop.example"},
		{"recipients: none", cond("recipients", "contains", "sales@"), false, "support@shop.example, billing@shop.example"},
		{"subject contains", cond("subject", "contains", "RECHNUNG"), true, "Rechnung 2024-118 falsch"},
		{"subject regex", cond("subject", "regex", `\b\d{4}-\d+\b`), true, "Rechnung 2024-118"},
		{"body contains, non-ASCII", cond("body", "contains", "grüßen"), true, "Grüßen"},
		{"body does not contain", cond("body", "contains", "kündigung"), false, "Guten Tag"},
		{"header present", Condition{Field: "header", Op: "present", Header: "x-priority"}, true, "X-Priority: 1 (Highest)"},
		{"header absent", Condition{Field: "header", Op: "present", Header: "List-Id"}, false, "(no List-Id field)"},
		{"header starts_with", Condition{Field: "header", Op: "starts_with", Header: "X-Priority", Value: "1"}, true, ""},
		{"header encoded word decoded", Condition{Field: "header", Op: "equals", Header: "X-Origin", Value: "münchen"}, true, "München"},
		{"has_attachment true", cond("has_attachment", "is", "true"), true, "has an attachment"},
		{"has_attachment false", cond("has_attachment", "is", "false"), false, ""},
		{"language equals", cond("language", "equals", "de"), true, "de"},
		{"language in", cond("language", "in", "fr, it"), false, "de"},
		{"automatic false for a person", cond("automatic", "is", "false"), true, "written by a person"},
		{"automatic true", cond("automatic", "is", "true"), false, ""},
		{"negated", Condition{Field: "subject", Op: "contains", Value: "rechnung", Negate: true}, false, ""},
		{"negated miss", Condition{Field: "subject", Op: "contains", Value: "angebot", Negate: true}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustCompile(t, Rule{ID: 1, Name: "r", Enabled: true, Conditions: []Condition{tt.c}, Actions: Actions{Category: "hit"}})
			res := rs.Classify(sampleFacts())
			if got := res.Actions.Category == "hit"; got != tt.want {
				t.Errorf("Classify matched = %v, want %v", got, tt.want)
			}
			tr := rs.Explain(sampleFacts())
			if len(tr) != 1 || len(tr[0].Conditions) != 1 {
				t.Fatalf("Explain = %+v", tr)
			}
			ct := tr[0].Conditions[0]
			if ct.Matched != tt.want || tr[0].Applied != tt.want {
				t.Errorf("Explain matched = %v applied = %v, want %v", ct.Matched, tr[0].Applied, tt.want)
			}
			if !strings.Contains(ct.Seen, tt.seen) {
				t.Errorf("Explain seen = %q, want it to show %q", ct.Seen, tt.seen)
			}
		})
	}
}

func TestMatchAllAny(t *testing.T) {
	hit, miss := cond("subject", "contains", "rechnung"), cond("subject", "contains", "angebot")
	tests := []struct {
		match string
		conds []Condition
		want  bool
	}{
		{"", []Condition{hit, hit}, true},
		{"all", []Condition{hit, miss}, false},
		{"any", []Condition{miss, hit}, true},
		{"any", []Condition{miss, miss}, false},
		{"all", nil, true}, // a catch-all
		{"any", nil, true},
	}
	for _, tt := range tests {
		rs := mustCompile(t, Rule{ID: 1, Name: "r", Enabled: true, Match: tt.match, Conditions: tt.conds, Actions: Actions{Category: "hit"}})
		if got := rs.Classify(sampleFacts()).Actions.Category == "hit"; got != tt.want {
			t.Errorf("match %q over %d conditions = %v, want %v", tt.match, len(tt.conds), got, tt.want)
		}
		// Explain evaluates every condition, but comes to the same answer.
		if got := rs.Explain(sampleFacts())[0]; got.Matched != tt.want || len(got.Conditions) != len(tt.conds) {
			t.Errorf("Explain for match %q = %+v", tt.match, got)
		}
	}
}

func TestOrderingAndContinue(t *testing.T) {
	invoice := cond("subject", "contains", "rechnung")
	rules := []Rule{
		// Given out of order: Position decides.
		{ID: 30, Name: "catch-all", Position: 30, Enabled: true, Actions: Actions{QueueID: 1, Category: "general"}},
		{ID: 10, Name: "German", Position: 10, Enabled: true, Continue: true, Conditions: []Condition{cond("language", "equals", "de")},
			Actions: Actions{Language: "de", Tags: []string{"german"}, Skills: map[string]int{"billing": 3, "german": 5}, PriorityAdjust: 5}},
		{ID: 15, Name: "disabled", Position: 15, Enabled: false, Actions: Actions{QueueID: 99}},
		{ID: 20, Name: "Invoices", Position: 20, Enabled: true, Conditions: []Condition{invoice},
			Actions: Actions{QueueID: 4, Category: "billing", Tags: []string{"invoice", "german"}, Skills: map[string]int{"billing": 7}, SLAPolicyID: 2, SchemaID: 3}},
		{ID: 25, Name: "never reached", Position: 25, Enabled: true, Conditions: []Condition{invoice}, Actions: Actions{QueueID: 5}},
	}
	rs := mustCompile(t, rules...)
	res := rs.Classify(sampleFacts())
	want := Actions{QueueID: 4, Category: "billing", PriorityAdjust: 5, Skills: map[string]int{"billing": 7, "german": 5},
		Language: "de", Tags: []string{"german", "invoice"}, SLAPolicyID: 2, SchemaID: 3}
	if !equalActions(res.Actions, want) {
		t.Errorf("Actions = %+v\nwant      %+v", res.Actions, want)
	}
	if !slices.Equal(res.Applied, []int64{10, 20}) {
		t.Errorf("Applied = %v, want [10 20]", res.Applied)
	}
	if rules[1].Actions.Skills["billing"] != 3 || len(rules[1].Actions.Tags) != 1 {
		t.Errorf("Classify changed the rules given: %+v", rules[1].Actions)
	}

	var outcomes []string
	for _, tr := range rs.Explain(sampleFacts()) {
		outcomes = append(outcomes, fmt.Sprintf("%d %s", tr.RuleID, tr.Outcome))
	}
	wantOutcomes := []string{
		"10 applied, evaluation continued",
		"15 disabled",
		"20 applied, evaluation stopped",
		"25 matched, but an earlier rule stopped the evaluation",
		"30 matched, but an earlier rule stopped the evaluation",
	}
	if !slices.Equal(outcomes, wantOutcomes) {
		t.Errorf("Explain outcomes:\n%s\nwant\n%s", strings.Join(outcomes, "\n"), strings.Join(wantOutcomes, "\n"))
	}

	// A message that is no invoice falls through to the catch-all.
	f := sampleFacts()
	f.Subject = "Frage"
	res = rs.Classify(f)
	if res.Actions.QueueID != 1 || res.Actions.Category != "general" || !slices.Equal(res.Applied, []int64{10, 30}) {
		t.Errorf("fall-through = %+v", res)
	}
	// No rule at all: nothing applies.
	if res := mustCompile(t).Classify(f); len(res.Applied) != 0 || !equalActions(res.Actions, Actions{}) {
		t.Errorf("empty rule set = %+v", res)
	}
}

func equalActions(a, b Actions) bool {
	return a.QueueID == b.QueueID && a.Category == b.Category && a.PriorityAdjust == b.PriorityAdjust &&
		maps.Equal(a.Skills, b.Skills) && a.Language == b.Language && slices.Equal(a.Tags, b.Tags) &&
		a.SLAPolicyID == b.SLAPolicyID && a.SchemaID == b.SchemaID && a.Close == b.Close
}

func TestAutomaticAndSpam(t *testing.T) {
	rules := []Rule{
		{ID: 1, Name: "Spam score", Position: 1, Enabled: true,
			Conditions: []Condition{{Field: "header", Op: "regex", Header: "X-Spam-Score", Value: `^([5-9]|\d{2,})`}},
			Actions:    Actions{Close: CloseSpam}},
		{ID: 2, Name: "Automatic mail", Position: 2, Enabled: true,
			Conditions: []Condition{cond("automatic", "is", "true")},
			Actions:    Actions{Close: CloseAutomatic, Tags: []string{"automatic"}}},
	}
	rs := mustCompile(t, rules...)
	tests := []struct {
		name, header, from string
		want               string
		applied            []int64
	}{
		{"auto-reply", "Auto-Submitted: auto-replied\r\nSubject: Out of office\r\n", "anna@kunde.example", CloseAutomatic, []int64{2}},
		{"bounce", "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n", "MAILER-DAEMON@mx.example", CloseAutomatic, []int64{2}},
		{"list", "List-Id: <news.shop.example>\r\n", "news@shop.example", CloseAutomatic, []int64{2}},
		{"spam", "X-Spam-Score: 12.5\r\nList-Id: <spam.example>\r\n", "win@spam.example", CloseSpam, []int64{1}},
		{"a person", "Subject: Hilfe\r\nX-Spam-Score: 0.3\r\n", "anna@kunde.example", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.header + "\r\nHallo\r\n")
			m := store.Message{MailboxID: 7, FromAddr: tt.from, To: "Support <support@shop.example>", TextBody: "Hallo"}
			f := FactsFrom("Support DE", m, message.Header(raw))
			res := rs.Classify(f)
			if res.Actions.Close != tt.want || !slices.Equal(res.Applied, tt.applied) {
				t.Errorf("Classify = %+v, want close %q by %v (automatic: %q)", res, tt.want, tt.applied, f.Automatic)
			}
		})
	}
}

func TestFactsFrom(t *testing.T) {
	m := store.Message{
		MailboxID: 3, FromAddr: "anna@kunde.example", Subject: "Hi", TextBody: "Body",
		To: `"Support, DE" <support@shop.example>, billing@shop.example`, Cc: "broken <cc@shop.example",
		Attachments: []store.Attachment{{Filename: "logo.png", Inline: true}},
	}
	f := FactsFrom("Support", m, nil)
	if !slices.Equal(f.Recipients, []string{"support@shop.example", "billing@shop.example", "cc@shop.example"}) {
		t.Errorf("Recipients = %q", f.Recipients)
	}
	if f.HasAttachment || f.Automatic != "" || f.Header == nil || f.MailboxID != 3 || f.MailboxName != "Support" {
		t.Errorf("FactsFrom = %+v", f)
	}
	m.Attachments = append(m.Attachments, store.Attachment{Filename: "invoice.pdf"})
	if !FactsFrom("Support", m, nil).HasAttachment {
		t.Error("a PDF attachment is not seen")
	}
}

func TestLanguageDetectedOnlyWhenNeededAndOnce(t *testing.T) {
	var calls atomic.Int32
	d := fixedDetector{lang: "fr", calls: &calls}
	f := sampleFacts()
	f.Language = ""

	noLang := mustCompile(t, Rule{ID: 1, Name: "subject", Enabled: true, Conditions: []Condition{cond("subject", "contains", "x")}}).WithLanguageDetector(d)
	if res := noLang.Classify(f); calls.Load() != 0 || res.Language != "" || noLang.NeedsLanguage() {
		t.Errorf("detector called %d times with no language rule (result %q)", calls.Load(), res.Language)
	}

	two := mustCompile(t,
		Rule{ID: 1, Name: "de", Position: 1, Enabled: true, Conditions: []Condition{cond("language", "equals", "de")}, Actions: Actions{QueueID: 1}},
		Rule{ID: 2, Name: "fr", Position: 2, Enabled: true, Conditions: []Condition{cond("language", "in", "fr,it")}, Actions: Actions{QueueID: 2}},
	).WithLanguageDetector(d)
	res := two.Classify(f)
	if calls.Load() != 1 || res.Actions.QueueID != 2 || res.Language != "fr" {
		t.Errorf("detector called %d times, result %+v", calls.Load(), res)
	}
	// A language given in the facts is used as is.
	f.Language = "DE"
	if res := two.Classify(f); calls.Load() != 1 || res.Actions.QueueID != 1 {
		t.Errorf("given language: detector called %d times, result %+v", calls.Load(), res)
	}
	// The real detector, on the sample's German text.
	f.Language = ""
	if res := mustCompile(t, Rule{ID: 1, Name: "de", Enabled: true, Conditions: []Condition{cond("language", "equals", "de")}, Actions: Actions{QueueID: 1}}).Classify(f); res.Actions.QueueID != 1 {
		t.Errorf("German not detected: %+v", res)
	}
}

func TestValidate(t *testing.T) {
	ok := Rule{Name: "Invoices", Enabled: true, Conditions: []Condition{cond("subject", "contains", "invoice")}, Actions: Actions{QueueID: 1}}
	tests := []struct {
		name  string
		edit  func(r *Rule)
		field string // "" when valid
		msg   string // substring of the field's message
	}{
		{"valid", func(r *Rule) {}, "", ""},
		{"valid everything", func(r *Rule) {
			r.Match = "any"
			r.Conditions = append(r.Conditions, Condition{Field: "header", Op: "present", Header: "X-Priority"},
				cond("language", "in", "de, fr"), cond("automatic", "is", "false"), cond("body", "regex", `(?-i)ERROR \d+`))
			r.Actions = Actions{QueueID: 1, Category: "x", PriorityAdjust: -20, Skills: map[string]int{"sap": 10}, Language: "de",
				Tags: []string{"a", "b"}, SLAPolicyID: 1, SchemaID: 2, Close: "spam"}
		}, "", ""},
		{"no name", func(r *Rule) { r.Name = "  " }, "name", "enter a name"},
		{"bad match", func(r *Rule) { r.Match = "some" }, "match", `"all"`},
		{"unknown field", func(r *Rule) { r.Conditions[0].Field = "from" }, "conditions[0].field", "choose one of: mailbox, sender, sender_domain"},
		{"op not for the field", func(r *Rule) { r.Conditions[0].Op = "is" }, "conditions[0].op", "for subject choose one of: contains, equals"},
		{"invalid regex", func(r *Rule) {
			r.Conditions = append(r.Conditions, cond("subject", "regex", `(invoice|bill`))
		}, "conditions[1].value", "RE2 syntax"},
		{"regex with look-ahead", func(r *Rule) {
			r.Conditions = append(r.Conditions, cond("body", "regex", `foo(?=bar)`))
		}, "conditions[1].value", "invalid or unsupported Perl syntax"},
		{"empty value", func(r *Rule) { r.Conditions[0].Value = " " }, "conditions[0].value", "enter the text"},
		{"header without a name", func(r *Rule) { r.Conditions[0] = Condition{Field: "header", Op: "present"} }, "conditions[0].header", "X-Priority"},
		{"header name with colon", func(r *Rule) {
			r.Conditions[0] = Condition{Field: "header", Op: "contains", Header: "X-Spam:", Value: "yes"}
		}, "conditions[0].header", "without the colon"},
		{"is not a bool", func(r *Rule) { r.Conditions[0] = cond("has_attachment", "is", "yes please") }, "conditions[0].value", `"true" or "false"`},
		{"bad language", func(r *Rule) { r.Conditions[0] = cond("language", "in", "de, german") }, "conditions[0].value", `"german" is not a language code`},
		{"empty list", func(r *Rule) { r.Conditions[0] = cond("sender", "in", " , ") }, "conditions[0].value", "separated by commas"},
		{"skill level", func(r *Rule) { r.Actions.Skills = map[string]int{"sap": 11} }, "actions.skills.sap", "from 1 to 10"},
		{"action language", func(r *Rule) { r.Actions.Language = "German" }, "actions.language", "ISO 639-1"},
		{"empty tag", func(r *Rule) { r.Actions.Tags = []string{"ok", ""} }, "actions.tags[1]", "enter a tag"},
		{"close", func(r *Rule) { r.Actions.Close = "trash" }, "actions.close", `"spam", "automatic"`},
		{"priority", func(r *Rule) { r.Actions.PriorityAdjust = 5000 }, "actions.priority_adjust", "from -1000 to 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			r.Conditions = slices.Clone(ok.Conditions)
			tt.edit(&r)
			err := r.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a ValidationError", err)
			}
			if msg := ve.Fields[tt.field]; !strings.Contains(msg, tt.msg) {
				t.Errorf("%s: %q, want it to say %q (all: %v)", tt.field, msg, tt.msg, ve.Fields)
			}
		})
	}
}

func TestValidateRulesAndCompile(t *testing.T) {
	rules := []Rule{
		{ID: 1, Name: "a", Enabled: true},
		{ID: 1, Name: "b", Enabled: true, Conditions: []Condition{cond("subject", "regex", "a)")}},
	}
	_, err := Compile(rules)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Compile = %v, want a ValidationError", err)
	}
	if msg := ve.Fields["rules[1].conditions[0].value"]; !strings.Contains(msg, "unexpected )") {
		t.Errorf("regex error = %q, want Go's own error", msg)
	}
	if msg := ve.Fields["rules[1].id"]; !strings.Contains(msg, `"a"`) {
		t.Errorf("duplicate id = %q", msg)
	}
	if err := ValidateRules([]Rule{{Name: "new 1"}, {Name: "new 2"}}); err != nil {
		t.Errorf("two new rules (id 0): %v", err)
	}
}

func TestExplainShortensWhatItSaw(t *testing.T) {
	f := sampleFacts()
	f.Body = strings.Repeat("Lorem ipsum dolor sit amet. ", 100) + "Die Lieferung ist beschädigt angekommen." + strings.Repeat(" Noch mehr Text.", 100)
	rs := mustCompile(t, Rule{ID: 5, Name: "Damaged", Enabled: true, Match: "any",
		Conditions: []Condition{cond("body", "contains", "beschädigt"), cond("body", "regex", `kaputt|defekt`)},
		Actions:    Actions{Tags: []string{"damaged"}}})
	tr := rs.Explain(f)[0]
	if !tr.Matched || !tr.Applied || tr.Name != "Damaged" || tr.RuleID != 5 {
		t.Errorf("trace = %+v", tr)
	}
	hit, miss := tr.Conditions[0], tr.Conditions[1]
	if !hit.Matched || !strings.Contains(hit.Seen, "beschädigt angekommen") || !strings.HasPrefix(hit.Seen, "…") || len([]rune(hit.Seen)) > 100 {
		t.Errorf("matched condition saw %q", hit.Seen)
	}
	if miss.Matched || !strings.HasPrefix(miss.Seen, "Lorem ipsum") || !strings.HasSuffix(miss.Seen, "…") {
		t.Errorf("failed condition saw %q", miss.Seen)
	}
}

func TestClassifyConcurrently(t *testing.T) {
	rs := mustCompile(t, benchRules()...)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if res := rs.Classify(sampleFacts()); len(res.Applied) == 0 {
					t.Error("no rule applied")
					return
				}
			}
		})
	}
	wg.Wait()
}

// benchRules are 50 rules of the usual kinds, the last a catch-all.
func benchRules() []Rule {
	var rules []Rule
	for i := range 49 {
		var c Condition
		switch i % 7 {
		case 0:
			c = cond("subject", "contains", fmt.Sprintf("keyword%d", i))
		case 1:
			c = cond("body", "contains", fmt.Sprintf("phrase number %d", i))
		case 2:
			c = cond("sender_domain", "in", fmt.Sprintf("d%d.example, e%d.example", i, i))
		case 3:
			c = cond("body", "regex", fmt.Sprintf(`order\s+#?%d\d{4}`, i))
		case 4:
			c = Condition{Field: "header", Op: "contains", Header: "X-Spam-Flag", Value: "yes"}
		case 5:
			c = cond("recipients", "equals", fmt.Sprintf("queue%d@shop.example", i))
		case 6:
			c = cond("automatic", "is", "true")
		}
		rules = append(rules, Rule{ID: int64(i + 1), Name: fmt.Sprint(i), Position: i, Enabled: true, Continue: i%5 == 0,
			Conditions: []Condition{c, cond("mailbox", "contains", "support")}, Actions: Actions{QueueID: int64(i + 1), Tags: []string{"t"}}})
	}
	return append(rules, Rule{ID: 100, Name: "catch-all", Position: 100, Enabled: true, Actions: Actions{QueueID: 100}})
}

// BenchmarkClassify runs 50 rules on a message with a 10 KB body.
func BenchmarkClassify(b *testing.B) {
	rs := mustCompile(b, benchRules()...)
	f := sampleFacts()
	f.Body = strings.Repeat("Guten Tag, meine Bestellung ist noch nicht angekommen, bitte prüfen Sie das. ", 130)[:10000]
	b.ReportAllocs()
	for b.Loop() {
		rs.Classify(f)
	}
}

func TestLowerText(t *testing.T) {
	for _, s := range []string{"", "plain", "Guten Tag", "ÄÖÜ straße", "ΣΊΣΥΦΟΣ", "mixed İstanbul K", "ȺȾ grows", "ok then Ⱥ", "bad \xff byte"} {
		want := strings.ToLower(s)
		if s == "bad \xff byte" {
			want = s // kept, where strings.ToLower writes U+FFFD
		}
		if got := lowerText(s); got != want {
			t.Errorf("lowerText(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestRegexNeedsItsLiteral: a regular expression is only run on text that holds the
// literal every match needs, and the answer is the same as without that shortcut.
func TestRegexNeedsItsLiteral(t *testing.T) {
	for _, tt := range []struct{ expr, need string }{
		{`\border[- ]?ref[- ]?42\b`, "order,ref,42"},
		{`^\[ticket-7\]`, "[ticket-7]"},
		{`Invoice (no\.?|number) \d+`, "invoice ,n, "},
		{`refund|chargeback`, ""},
		{`(?-i)URGENT`, ""},
	} {
		_, _, need, err := compileRegexNeed(tt.expr)
		if got := strings.Join(need, ","); err != nil || got != tt.need {
			t.Errorf("compileRegexNeed(%q): need %q (%v), want %q", tt.expr, got, err, tt.need)
		}
	}
	rs, err := Compile([]Rule{{Name: "r", Enabled: true, Conditions: []Condition{{Field: FieldBody, Op: OpRegex, Value: `\bORDER[- ]?ref[- ]?42\b`}},
		Actions: Actions{Category: "hit"}}})
	if err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]string{"Your Order-Ref 42 is late": "hit", "order ref 421": "", "no such thing": ""} {
		if got := rs.Classify(Facts{Body: body}).Actions.Category; got != want {
			t.Errorf("body %q: category %q, want %q", body, got, want)
		}
	}
}
