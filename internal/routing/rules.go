package routing

import (
	"cmp"
	"fmt"
	"mime"
	"net/mail"
	"net/textproto"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// Rule is a classification rule: when a new message meets its conditions, its actions set
// the work item's queue, category, priority, required skills and language, tags, SLA
// policy and prioritisation schema, or close it at once.
//
// Rules are evaluated in Position order (then by ID). The first enabled rule that matches
// wins and evaluation stops, unless the rule has Continue set: then its actions apply and
// evaluation goes on, and a later matching rule's actions override earlier ones field by
// field (a later queue replaces an earlier one, skills merge skill by skill, tags add up).
// A rule without conditions matches every message, which makes a catch-all last rule.
type Rule struct {
	ID         int64       `json:"id"`
	Name       string      `json:"name"`
	Position   int         `json:"position"`
	Enabled    bool        `json:"enabled"`
	Match      string      `json:"match"` // MatchAll ("" means all) or MatchAny of the conditions
	Conditions []Condition `json:"conditions"`
	Actions    Actions     `json:"actions"`
	Continue   bool        `json:"continue"`
}

// How a rule combines its conditions.
const (
	MatchAll = "all"
	MatchAny = "any"
)

// Condition tests one fact of a message.
//
// Fields and the operators each allows:
//
//	mailbox         equals, in (the mailbox's name or number), contains, regex
//	sender          the sender's address: contains, equals, starts_with, ends_with, regex, in
//	sender_domain   the part after "@": as sender
//	recipients      each To and Cc address (one must match): as sender
//	subject, body   as sender
//	header          the values of the header field named by Header: as sender, or present
//	has_attachment  is ("true" or "false"); inline images do not count
//	language        equals, in (ISO 639-1 codes, e.g. "de")
//	automatic       is ("true" when a program wrote the message: see message.Automatic)
//
// Text comparisons ignore case. A regex is RE2 syntax (https://golang.org/s/re2syntax),
// also case-insensitive unless it starts with (?-i). "in" takes a comma-separated list
// and matches when the fact equals one of its items. Negate turns the outcome round.
type Condition struct {
	Field  string `json:"field"`
	Op     string `json:"op"`
	Header string `json:"header,omitempty"` // header field name, for field "header"
	Value  string `json:"value"`
	Negate bool   `json:"negate,omitempty"`
}

// Actions are what a matching rule does to the work item. Zero values leave a field as
// it is.
type Actions struct {
	QueueID        int64          `json:"queue_id,omitempty"`
	Category       string         `json:"category,omitempty"`
	PriorityAdjust int            `json:"priority_adjust,omitempty"` // added to the schema's priority
	Skills         map[string]int `json:"skills,omitempty"`          // required skill -> minimum level 1..10
	Language       string         `json:"language,omitempty"`        // required language, ISO 639-1
	Tags           []string       `json:"tags,omitempty"`
	SLAPolicyID    int64          `json:"sla_policy_id,omitempty"`
	SchemaID       int64          `json:"schema_id,omitempty"`
	Close          string         `json:"close,omitempty"` // "", CloseSpam or CloseAutomatic
}

// Reasons to close an item at once.
const (
	CloseSpam      = "spam"
	CloseAutomatic = "automatic"
)

// Condition fields.
const (
	FieldMailbox       = "mailbox"
	FieldSender        = "sender"
	FieldSenderDomain  = "sender_domain"
	FieldRecipients    = "recipients"
	FieldSubject       = "subject"
	FieldBody          = "body"
	FieldHeader        = "header"
	FieldHasAttachment = "has_attachment"
	FieldLanguage      = "language"
	FieldAutomatic     = "automatic"
)

// Condition operators.
const (
	OpContains   = "contains"
	OpEquals     = "equals"
	OpStartsWith = "starts_with"
	OpEndsWith   = "ends_with"
	OpRegex      = "regex"
	OpIn         = "in"
	OpPresent    = "present"
	OpIs         = "is"
)

// Limits of rules, so that one rule set stays fast on every message.
const (
	maxRuleName       = 200
	maxConditions     = 50
	maxConditionValue = 2000
	maxTags           = 50
	maxTag            = 64
	maxSkills         = 50
	maxPriorityAdjust = 1000
	maxHeaderName     = 100
)

var (
	fieldOrder = []string{FieldMailbox, FieldSender, FieldSenderDomain, FieldRecipients, FieldSubject,
		FieldBody, FieldHeader, FieldHasAttachment, FieldLanguage, FieldAutomatic}
	textOps = []string{OpContains, OpEquals, OpStartsWith, OpEndsWith, OpRegex, OpIn}
	// fieldOps lists the operators each field allows, in the order the UI offers them.
	fieldOps = map[string][]string{
		FieldMailbox:       {OpEquals, OpIn, OpContains, OpRegex},
		FieldSender:        textOps,
		FieldSenderDomain:  textOps,
		FieldRecipients:    textOps,
		FieldSubject:       textOps,
		FieldBody:          textOps,
		FieldHeader:        append(slices.Clip(textOps), OpPresent),
		FieldHasAttachment: {OpIs},
		FieldLanguage:      {OpEquals, OpIn},
		FieldAutomatic:     {OpIs},
	}
	isoCode = regexp.MustCompile(`^[a-z]{2}$`)
)

// Validate checks a rule, reporting every problem by JSON field name (e.g.
// "conditions[1].value") with what to enter instead.
func (r Rule) Validate() error {
	errs := &ValidationError{What: "rule"}
	r.validate(errs, "")
	return errs.OrNil()
}

// ValidateRules checks a whole rule list: each rule as Validate does, under "rules[i].",
// and that no two saved rules share an id. Rules may share a position: they then go by id.
func ValidateRules(rules []Rule) error {
	errs := &ValidationError{What: "rules"}
	ids := map[int64]int{}
	for i, r := range rules {
		prefix := fmt.Sprintf("rules[%d].", i)
		r.validate(errs, prefix)
		if r.ID != 0 {
			if j, dup := ids[r.ID]; dup {
				errs.Add(prefix+"id", fmt.Sprintf("the rule %q has this id already: each rule needs its own", rules[j].Name))
			}
			ids[r.ID] = i
		}
	}
	return errs.OrNil()
}

func (r Rule) validate(errs *ValidationError, p string) {
	switch name := strings.TrimSpace(r.Name); {
	case name == "":
		errs.Add(p+"name", "enter a name for the rule")
	case utf8.RuneCountInString(name) > maxRuleName:
		errs.Add(p+"name", fmt.Sprintf("enter a name of at most %d characters", maxRuleName))
	}
	if r.Position < 0 {
		errs.Add(p+"position", "enter a position of 0 or more")
	}
	switch r.Match {
	case "", MatchAll, MatchAny:
	default:
		errs.Add(p+"match", `choose "all" (every condition must hold) or "any" (one is enough)`)
	}
	if len(r.Conditions) > maxConditions {
		errs.Add(p+"conditions", fmt.Sprintf("enter at most %d conditions, or split the rule", maxConditions))
	}
	for i, c := range r.Conditions {
		c.validate(errs, fmt.Sprintf("%sconditions[%d].", p, i))
	}
	r.Actions.validate(errs, p+"actions.")
}

func (c Condition) validate(errs *ValidationError, p string) {
	ops, ok := fieldOps[c.Field]
	if !ok {
		errs.Add(p+"field", "choose one of: "+strings.Join(fieldOrder, ", "))
		return
	}
	if !slices.Contains(ops, c.Op) {
		errs.Add(p+"op", fmt.Sprintf("for %s choose one of: %s", c.Field, strings.Join(ops, ", ")))
		return
	}
	if c.Field == FieldHeader {
		name := strings.TrimSpace(c.Header)
		switch {
		case name == "":
			errs.Add(p+"header", "enter the name of a header field, e.g. X-Priority")
		case len(name) > maxHeaderName || !validHeaderName(name):
			errs.Add(p+"header", "enter a header field name: letters, digits and hyphens, e.g. X-Priority, without the colon")
		}
	}
	v := c.Value
	if utf8.RuneCountInString(v) > maxConditionValue {
		errs.Add(p+"value", fmt.Sprintf("enter at most %d characters", maxConditionValue))
		return
	}
	switch c.Op {
	case OpPresent:
		return // the value is not used
	case OpIs:
		if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			errs.Add(p+"value", `enter "true" or "false"`)
		}
		return
	case OpRegex:
		if v == "" {
			errs.Add(p+"value", "enter a regular expression")
			return
		}
		if _, _, err := compileRegex(v); err != nil {
			errs.Add(p+"value", "enter a valid regular expression in RE2 syntax (https://golang.org/s/re2syntax; no look-around or back-references): "+err.Error())
		}
		return
	case OpIn:
		items := splitList(v)
		if len(items) == 0 {
			errs.Add(p+"value", "enter one or more values separated by commas")
			return
		}
		if c.Field == FieldLanguage {
			for _, it := range items {
				if !isoCode.MatchString(it) {
					errs.Add(p+"value", fmt.Sprintf("%q is not a language code: enter two-letter ISO 639-1 codes separated by commas, e.g. de, fr", it))
					return
				}
			}
		}
		return
	}
	if strings.TrimSpace(v) == "" {
		errs.Add(p+"value", "enter the text to compare with")
		return
	}
	if c.Field == FieldLanguage && !isoCode.MatchString(strings.ToLower(strings.TrimSpace(v))) {
		errs.Add(p+"value", "enter a two-letter ISO 639-1 language code, e.g. de")
	}
}

func (a Actions) validate(errs *ValidationError, p string) {
	if a.QueueID < 0 {
		errs.Add(p+"queue_id", "choose a queue")
	}
	if utf8.RuneCountInString(a.Category) > maxRuleName {
		errs.Add(p+"category", fmt.Sprintf("enter a category of at most %d characters", maxRuleName))
	}
	if a.PriorityAdjust < -maxPriorityAdjust || a.PriorityAdjust > maxPriorityAdjust {
		errs.Add(p+"priority_adjust", fmt.Sprintf("enter a number from %d to %d", -maxPriorityAdjust, maxPriorityAdjust))
	}
	if len(a.Skills) > maxSkills {
		errs.Add(p+"skills", fmt.Sprintf("require at most %d skills", maxSkills))
	}
	for _, skill := range sortedKeys(a.Skills) {
		level := a.Skills[skill]
		switch {
		case strings.TrimSpace(skill) == "":
			errs.Add(p+"skills", "enter a name for each skill")
		case level < 1 || level > 10:
			errs.Add(p+"skills."+skill, "enter a minimum level from 1 to 10")
		}
	}
	if a.Language != "" && !isoCode.MatchString(a.Language) {
		errs.Add(p+"language", "enter a two-letter ISO 639-1 language code in lower case, e.g. de")
	}
	if len(a.Tags) > maxTags {
		errs.Add(p+"tags", fmt.Sprintf("enter at most %d tags", maxTags))
	}
	for i, t := range a.Tags {
		switch t = strings.TrimSpace(t); {
		case t == "":
			errs.Add(fmt.Sprintf("%stags[%d]", p, i), "enter a tag, or remove the empty one")
		case utf8.RuneCountInString(t) > maxTag || strings.Contains(t, ","):
			errs.Add(fmt.Sprintf("%stags[%d]", p, i), fmt.Sprintf("enter a tag of at most %d characters, without commas", maxTag))
		}
	}
	if a.SLAPolicyID < 0 {
		errs.Add(p+"sla_policy_id", "choose an SLA policy")
	}
	if a.SchemaID < 0 {
		errs.Add(p+"schema_id", "choose a prioritisation schema")
	}
	switch a.Close {
	case "", CloseSpam, CloseAutomatic:
	default:
		errs.Add(p+"close", `choose "spam", "automatic", or leave empty to keep the item open`)
	}
}

// validHeaderName reports whether s is an RFC 5322 field name: printable ASCII but colon.
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return s != ""
}

// compileRegex compiles a condition's regular expression, case-insensitive by default.
//
// Go's regexp cannot use a literal prefix to skip ahead when it folds case, and folding
// every rune costs: on a 10 KB body a case-insensitive search is some ten times slower.
// So when no part of the expression turns case-insensitivity off, its literals are
// lowered and it runs without folding on the lower-cased text (onLower true), which the
// other text conditions share. Character classes need no change: under (?i) the parser
// already widened them to every case.
func compileRegex(v string) (re *regexp.Regexp, onLower bool, err error) {
	re, onLower, _, err = compileRegexNeed(v)
	return re, onLower, err
}

// compileRegexNeed is compileRegex that also returns literals every match contains
// (need, none when there is none to be sure of): text without one of them cannot match, so
// the regular expression need not run on it. A body of 10 KB is searched for a word far
// faster than a match is tried at every position (RE2's prefilter, in small).
func compileRegexNeed(v string) (re *regexp.Regexp, onLower bool, need []string, err error) {
	if _, err := regexp.Compile(v); err != nil { // report the user's own expression
		return nil, false, nil, err
	}
	tree, err := syntax.Parse("(?i)"+v, syntax.Perl)
	if err != nil {
		return nil, false, nil, err
	}
	if foldsEverywhere(tree) {
		lowerLiterals(tree)
		if re, err := regexp.Compile(tree.String()); err == nil {
			return re, true, requiredLiterals(tree.Simplify(), nil), nil
		}
	}
	re, err = regexp.Compile("(?i)" + v)
	return re, false, nil, err
}

// requiredLiterals appends to out the exact literals that every match of re contains.
func requiredLiterals(re *syntax.Regexp, out []string) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase == 0 {
			out = append(out, string(re.Rune))
		}
	case syntax.OpCapture, syntax.OpPlus:
		out = requiredLiterals(re.Sub[0], out)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			out = requiredLiterals(re.Sub[0], out)
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			out = requiredLiterals(sub, out)
		}
	}
	return out
}

// foldsEverywhere reports whether every literal and character class of re matches
// case-insensitively.
func foldsEverywhere(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral, syntax.OpCharClass:
		if re.Flags&syntax.FoldCase == 0 {
			for _, r := range re.Rune {
				if unicode.SimpleFold(r) != r {
					return false // a rune with case, matched exactly
				}
			}
		}
	}
	for _, sub := range re.Sub {
		if !foldsEverywhere(sub) {
			return false
		}
	}
	return true
}

// lowerLiterals turns re's case-folding literals into lower-case exact ones.
func lowerLiterals(re *syntax.Regexp) {
	if re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase != 0 {
		for i, r := range re.Rune {
			re.Rune[i] = unicode.ToLower(r)
		}
		re.Flags &^= syntax.FoldCase
	}
	for _, sub := range re.Sub {
		lowerLiterals(sub)
	}
}

// splitList splits an "in" value at commas into trimmed, non-empty, lower-case items.
func splitList(v string) []string {
	var items []string
	for it := range strings.SplitSeq(v, ",") {
		if it = lowerText(strings.TrimSpace(it)); it != "" {
			items = append(items, it)
		}
	}
	return items
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Facts are what rules look at in a message. FactsFrom builds them from a parsed message.
type Facts struct {
	MailboxID     int64
	MailboxName   string
	From          string   // the sender's address
	Recipients    []string // the To and Cc addresses
	Subject       string
	Body          string // the text body (text derived from HTML when there is none)
	Header        textproto.MIMEHeader
	HasAttachment bool // an attachment other than an inline image
	// Language is the message's language, ISO 639-1, when already known; when empty and a
	// rule asks, the RuleSet's detector is run on the subject and body (once per message).
	Language string
	// Automatic says why a program wrote the message, "" when a person did: see
	// message.Automatic.
	Automatic string
}

// FactsFrom gathers the facts of m, a parsed message received in the mailbox named
// mailboxName, whose header is h (message.Header reads it from the raw message; nil is
// taken as empty).
func FactsFrom(mailboxName string, m store.Message, h textproto.MIMEHeader) Facts {
	if h == nil {
		h = textproto.MIMEHeader{}
	}
	f := Facts{
		MailboxID:   m.MailboxID,
		MailboxName: mailboxName,
		From:        m.FromAddr,
		Recipients:  append(addresses(m.To), addresses(m.Cc)...),
		Subject:     m.Subject,
		Body:        m.TextBody,
		Header:      h,
		Automatic:   message.AutomaticOf(h, m),
	}
	for _, a := range m.Attachments {
		if !a.Inline {
			f.HasAttachment = true
			break
		}
	}
	return f
}

// addresses returns the addresses of an address list in display form, leniently: a list
// that does not parse gives the parts that look like addresses.
func addresses(list string) []string {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	if as, err := mail.ParseAddressList(list); err == nil {
		out := make([]string, 0, len(as))
		for _, a := range as {
			out = append(out, a.Address)
		}
		return out
	}
	var out []string
	for part := range strings.SplitSeq(list, ",") {
		part = strings.TrimSpace(part)
		if i := strings.LastIndexByte(part, '<'); i >= 0 {
			part = strings.TrimSuffix(part[i+1:], ">")
		}
		if strings.Contains(part, "@") {
			out = append(out, strings.TrimSpace(part))
		}
	}
	return out
}

// RuleSet is a compiled, ordered rule list: regular expressions compiled and values
// lowered once. It is immutable and safe for concurrent use.
type RuleSet struct {
	rules         []compiledRule // in evaluation order, disabled ones included
	detector      LanguageDetector
	needsLanguage bool // an enabled rule has a language condition
}

type compiledRule struct {
	Rule
	any   bool
	conds []compiledCond
}

type compiledCond struct {
	Condition
	header string         // canonical header name
	value  string         // lower-cased value for text operators
	items  []string       // lower-cased items for "in"
	re     *regexp.Regexp // for "regex"
	lowRE  bool           // re runs on the lower-cased text
	need   []string       // literals every match of re contains (in the text re runs on)
	truth  bool           // for "is"
}

// Compile validates rules and compiles them for Classify and Explain, in Position order
// (then ID). It uses NewLanguageDetector; WithLanguageDetector replaces it.
func Compile(rules []Rule) (*RuleSet, error) {
	if err := ValidateRules(rules); err != nil {
		return nil, err
	}
	rs := &RuleSet{rules: make([]compiledRule, 0, len(rules)), detector: NewLanguageDetector()}
	for _, r := range rules {
		cr := compiledRule{Rule: r, any: r.Match == MatchAny, conds: make([]compiledCond, len(r.Conditions))}
		cr.Actions.Skills = cloneMap(r.Actions.Skills)
		cr.Actions.Tags = slices.Clone(r.Actions.Tags)
		cr.Conditions = slices.Clone(r.Conditions)
		for i, c := range r.Conditions {
			cc := compiledCond{Condition: c, header: textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(c.Header))}
			switch c.Op {
			case OpRegex:
				re, onLower, need, err := compileRegexNeed(c.Value)
				if err != nil { // validated above; kept for safety
					return nil, err
				}
				cc.re, cc.lowRE, cc.need = re, onLower, need
			case OpIn:
				cc.items = splitList(c.Value)
			case OpIs:
				cc.truth, _ = strconv.ParseBool(strings.TrimSpace(c.Value))
			default:
				cc.value = lowerText(c.Value)
				if c.Field == FieldLanguage {
					cc.value = strings.TrimSpace(cc.value)
				}
			}
			if c.Field == FieldLanguage && r.Enabled {
				rs.needsLanguage = true
			}
			cr.conds[i] = cc
		}
		rs.rules = append(rs.rules, cr)
	}
	slices.SortStableFunc(rs.rules, func(a, b compiledRule) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	return rs, nil
}

// WithLanguageDetector returns a copy of rs that detects languages with d.
func (rs *RuleSet) WithLanguageDetector(d LanguageDetector) *RuleSet {
	c := *rs
	c.detector = d
	return &c
}

// NeedsLanguage reports whether a rule looks at the message's language, so that a caller
// may skip detecting it otherwise.
func (rs *RuleSet) NeedsLanguage() bool { return rs.needsLanguage }

// Result is what the rules decided for a message.
type Result struct {
	Actions Actions // merged actions of the rules that applied; zero when none did
	Applied []int64 // ids of the rules that applied, in evaluation order
	// Language is the message's language as the rules saw it: Facts.Language, or the
	// detected one when a rule needed it ("" when unsure or not needed).
	Language string
}

// Classify runs the enabled rules on a message's facts and merges the actions of those
// that apply. It has no side effects.
func (rs *RuleSet) Classify(f Facts) Result {
	v := newView(&f, rs.detector)
	var res Result
	for i := range rs.rules {
		r := &rs.rules[i]
		if !r.Enabled || !r.matches(v, nil) {
			continue
		}
		res.Actions = merge(res.Actions, r.Actions)
		res.Applied = append(res.Applied, r.ID)
		if !r.Continue {
			break
		}
	}
	res.Language = v.language
	return res
}

// RuleTrace tells what one rule made of a message, for testing rules on a stored message.
type RuleTrace struct {
	RuleID  int64  `json:"rule_id"`
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	Matched bool   `json:"matched"` // the conditions hold ("all" or "any" of them)
	Applied bool   `json:"applied"` // the actions were applied
	// Outcome says it in words: "applied, evaluation stopped", "applied, evaluation
	// continued", "conditions not met", "disabled", "matched, but an earlier rule stopped
	// the evaluation".
	Outcome    string           `json:"outcome"`
	Conditions []ConditionTrace `json:"conditions"`
}

// ConditionTrace tells whether one condition held and what it saw.
type ConditionTrace struct {
	Condition Condition `json:"condition"`
	Matched   bool      `json:"matched"` // after Negate
	// Seen is the fact the condition looked at, shortened to about 80 characters, around
	// the match when there was one.
	Seen string `json:"seen"`
}

// Explain evaluates every rule, disabled ones too, on a message's facts, with each
// condition's outcome, so that a person can see why rules applied or not. The rules that
// it marks applied are exactly those that Classify applies.
func (rs *RuleSet) Explain(f Facts) []RuleTrace {
	v := newView(&f, rs.detector)
	traces := make([]RuleTrace, 0, len(rs.rules))
	stopped := false
	for i := range rs.rules {
		r := &rs.rules[i]
		t := RuleTrace{RuleID: r.ID, Name: r.Name, Enabled: r.Enabled, Conditions: make([]ConditionTrace, 0, len(r.conds))}
		t.Matched = r.matches(v, &t.Conditions)
		switch {
		case !r.Enabled:
			t.Outcome = "disabled"
		case !t.Matched:
			t.Outcome = "conditions not met"
		case stopped:
			t.Outcome = "matched, but an earlier rule stopped the evaluation"
		case r.Continue:
			t.Applied = true
			t.Outcome = "applied, evaluation continued"
		default:
			t.Applied = true
			t.Outcome = "applied, evaluation stopped"
			stopped = true
		}
		traces = append(traces, t)
	}
	return traces
}

// matches evaluates r's conditions on v. With trace nil it stops as soon as the outcome
// is known; otherwise it evaluates every condition and appends its trace.
func (r *compiledRule) matches(v *view, trace *[]ConditionTrace) bool {
	if len(r.conds) == 0 {
		return true
	}
	result := !r.any // all: true until one fails; any: false until one holds
	for i := range r.conds {
		c := &r.conds[i]
		ok, seen := c.eval(v, trace != nil)
		if c.Negate {
			ok = !ok
		}
		if trace != nil {
			*trace = append(*trace, ConditionTrace{Condition: c.Condition, Matched: ok, Seen: seen})
		}
		if ok == r.any { // any: one held; all: one failed
			result = r.any
			if trace == nil {
				return result
			}
		}
	}
	return result
}

// view is one message's facts prepared for the conditions: lower-cased and derived values
// are computed on first use and kept, so that each costs at most once per message.
type view struct {
	f        *Facts
	detector LanguageDetector

	lowered        map[string]string // field -> lower-cased text
	domain         string
	domainDone     bool
	recipients     []string // lower-cased
	recipientsDone bool
	language       string
	languageDone   bool
	headers        map[string][]string // canonical name -> decoded values
}

func newView(f *Facts, d LanguageDetector) *view {
	v := &view{f: f, detector: d}
	if f.Language != "" {
		v.language, v.languageDone = strings.ToLower(f.Language), true
	}
	return v
}

func (v *view) lower(field, s string) string {
	if l, ok := v.lowered[field]; ok {
		return l
	}
	if v.lowered == nil {
		v.lowered = make(map[string]string, 4)
	}
	l := lowerText(s)
	v.lowered[field] = l
	return l
}

func (v *view) senderDomain() string {
	if !v.domainDone {
		if i := strings.LastIndexByte(v.f.From, '@'); i >= 0 {
			v.domain = strings.ToLower(strings.TrimSpace(v.f.From[i+1:]))
		}
		v.domainDone = true
	}
	return v.domain
}

func (v *view) recipientList() []string {
	if !v.recipientsDone {
		v.recipients = make([]string, len(v.f.Recipients))
		for i, r := range v.f.Recipients {
			v.recipients[i] = strings.ToLower(strings.TrimSpace(r))
		}
		v.recipientsDone = true
	}
	return v.recipients
}

func (v *view) lang() string {
	if !v.languageDone {
		v.languageDone = true
		if v.detector != nil {
			v.language = v.detector.Detect(v.f.Subject + "\n" + v.f.Body)
		}
	}
	return v.language
}

// headerValues returns the values of a header field, RFC 2047 encoded words decoded.
func (v *view) headerValues(name string) []string {
	if vals, ok := v.headers[name]; ok {
		return vals
	}
	vals := v.f.Header[name]
	cloned := false
	for i, s := range vals {
		if !strings.Contains(s, "=?") {
			continue
		}
		if d, err := wordDecoder.DecodeHeader(s); err == nil {
			if !cloned { // Facts are the caller's: never write into them
				vals, cloned = slices.Clone(vals), true
			}
			vals[i] = d
		}
	}
	if v.headers == nil {
		v.headers = map[string][]string{}
	}
	v.headers[name] = vals
	return vals
}

var wordDecoder = &mime.WordDecoder{} // no CharsetReader: only UTF-8, ASCII and Latin-1 are decoded

// eval tests the condition, not negated. With explain it also says what it saw.
func (c *compiledCond) eval(v *view, explain bool) (bool, string) {
	f := v.f
	switch c.Field {
	case FieldMailbox:
		if c.Op == OpEquals || c.Op == OpIn {
			id := strconv.FormatInt(f.MailboxID, 10)
			name := v.lower(FieldMailbox, f.MailboxName)
			var ok bool
			if c.Op == OpEquals {
				ok = c.value == name || c.value == id
			} else {
				ok = slices.Contains(c.items, name) || slices.Contains(c.items, id)
			}
			return ok, seenIf(explain, fmt.Sprintf("%s (%s)", f.MailboxName, id))
		}
		return c.text(v, FieldMailbox, f.MailboxName, explain)
	case FieldSender:
		return c.text(v, FieldSender, f.From, explain)
	case FieldSenderDomain:
		d := v.senderDomain()
		return c.textLower(d, d, explain)
	case FieldRecipients:
		list := v.recipientList()
		for i, r := range list {
			if ok, seen := c.textLower(f.Recipients[i], r, explain); ok {
				return true, seen
			}
		}
		return false, seenIf(explain, strings.Join(f.Recipients, ", "))
	case FieldSubject:
		return c.text(v, FieldSubject, f.Subject, explain)
	case FieldBody:
		return c.text(v, FieldBody, f.Body, explain)
	case FieldHeader:
		vals := v.headerValues(c.header)
		if c.Op == OpPresent {
			if len(vals) == 0 {
				return false, seenIf(explain, "(no "+c.header+" field)")
			}
			return true, seenIf(explain, c.header+": "+vals[0])
		}
		for _, s := range vals {
			if ok, seen := c.textLower(s, lowerText(s), explain); ok {
				return true, seen
			}
		}
		if len(vals) == 0 {
			return false, seenIf(explain, "(no "+c.header+" field)")
		}
		return false, seenIf(explain, strings.Join(vals, " | "))
	case FieldHasAttachment:
		seen := "no attachment"
		if f.HasAttachment {
			seen = "has an attachment"
		}
		return f.HasAttachment == c.truth, seen
	case FieldAutomatic:
		seen := "written by a person"
		if f.Automatic != "" {
			seen = "automatic: " + f.Automatic
		}
		return (f.Automatic != "") == c.truth, seenIf(explain, seen)
	case FieldLanguage:
		l := v.lang()
		seen := l
		if l == "" {
			seen = "(language not recognised)"
		}
		if c.Op == OpIn {
			return l != "" && slices.Contains(c.items, l), seen
		}
		return l != "" && l == c.value, seen
	}
	return false, ""
}

// text tests a text fact whose lower-cased form is cached under key.
func (c *compiledCond) text(v *view, key, s string, explain bool) (bool, string) {
	if c.Op == OpRegex && !c.lowRE {
		return c.textLower(s, "", explain)
	}
	return c.textLower(s, v.lower(key, s), explain)
}

// textLower tests s (lower-cased: lower) with a text operator.
func (c *compiledCond) textLower(s, lower string, explain bool) (bool, string) {
	at, n := -1, 0 // where the match is in s, for explaining
	switch c.Op {
	case OpContains:
		at, n = strings.Index(lower, c.value), len(c.value)
	case OpEquals:
		if lower == c.value {
			at, n = 0, len(s)
		}
	case OpStartsWith:
		if strings.HasPrefix(lower, c.value) {
			at, n = 0, len(c.value)
		}
	case OpEndsWith:
		if strings.HasSuffix(lower, c.value) {
			at, n = len(lower)-len(c.value), len(c.value)
		}
	case OpIn:
		trimmed := strings.TrimSpace(lower)
		if slices.Contains(c.items, trimmed) {
			at, n = 0, len(s)
		}
	case OpRegex:
		in := s
		if c.lowRE {
			in = lower
		}
		if !containsAll(in, c.need) {
			break
		}
		if !explain {
			return c.re.MatchString(in), ""
		}
		if loc := c.re.FindStringIndex(in); loc != nil {
			at, n = loc[0], loc[1]-loc[0]
			if len(in) != len(s) {
				at = -1 // lower-casing changed byte offsets: show the start instead
			}
			return true, excerpt(s, at, n)
		}
		return false, excerpt(s, -1, 0)
	}
	if !explain {
		return at >= 0, ""
	}
	if at >= 0 && len(lower) != len(s) {
		at = -1 // lower-casing changed byte offsets: show the start instead
	}
	return at >= 0, excerpt(s, at, n)
}

// lowerText lower-cases s like strings.ToLower, but two to three times as fast on
// mostly-ASCII text with a few accented letters, the usual body of a European mail, by
// changing a copy in place; invalid UTF-8 bytes are kept as they are.
func lowerText(s string) string {
	i := 0 // s[:i] is already lower case
	for i < len(s) {
		c := s[i]
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			break
		}
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for i < len(b) {
		c := b[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			i++
			continue
		}
		if l := unicode.ToLower(r); l != r {
			if utf8.RuneLen(l) != size { // rare, e.g. "Ⱥ" (2 bytes) to "ⱥ" (3 bytes)
				return string(b[:i]) + lowerRest(s[i:])
			}
			utf8.EncodeRune(b[i:], l)
		}
		i += size
	}
	return string(b)
}

// lowerRest is lowerText for text where lower-casing changes lengths.
func lowerRest(s string) string {
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[i])
		} else {
			b = utf8.AppendRune(b, unicode.ToLower(r))
		}
		i += size
	}
	return string(b)
}

func seenIf(explain bool, s string) string {
	if !explain {
		return ""
	}
	return excerpt(s, -1, 0)
}

// excerptRunes is about how long a Seen text is.
const excerptRunes = 80

// excerpt shortens s for a trace to about excerptRunes runes on one line: around the
// match at byte offset at (length n) when at >= 0, else from its start.
func excerpt(s string, at, n int) string {
	start := 0
	if at > 0 {
		start = max(0, at-excerptRunes/4)
		for start > 0 && !utf8.RuneStart(s[start]) {
			start--
		}
	}
	end := len(s)
	limit := start
	for i := 0; i < excerptRunes && limit < len(s); i++ {
		_, size := utf8.DecodeRuneInString(s[limit:])
		limit += size
	}
	if at >= 0 && at+n > limit && at+n <= len(s) {
		limit = at + n // keep the whole match
	}
	if limit < end {
		end = limit
	}
	out := strings.Join(strings.Fields(s[start:end]), " ")
	if start > 0 {
		out = "…" + out
	}
	if end < len(s) {
		out += "…"
	}
	if out == "" {
		return "(empty)"
	}
	return out
}

func merge(into, a Actions) Actions {
	if a.QueueID != 0 {
		into.QueueID = a.QueueID
	}
	if a.Category != "" {
		into.Category = a.Category
	}
	if a.PriorityAdjust != 0 {
		into.PriorityAdjust = a.PriorityAdjust
	}
	if len(a.Skills) > 0 {
		skills := make(map[string]int, len(into.Skills)+len(a.Skills))
		for k, l := range into.Skills {
			skills[k] = l
		}
		for k, l := range a.Skills {
			skills[k] = l
		}
		into.Skills = skills
	}
	if a.Language != "" {
		into.Language = a.Language
	}
	for _, t := range a.Tags {
		t = strings.TrimSpace(t)
		if !slices.Contains(into.Tags, t) {
			into.Tags = append(slices.Clip(into.Tags), t)
		}
	}
	if a.SLAPolicyID != 0 {
		into.SLAPolicyID = a.SLAPolicyID
	}
	if a.SchemaID != 0 {
		into.SchemaID = a.SchemaID
	}
	if a.Close != "" {
		into.Close = a.Close
	}
	return into
}

func cloneMap(m map[string]int) map[string]int {
	if m == nil {
		return nil
	}
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
