package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// routingCLI runs postroom queue, rule and routing commands on one data folder.
type routingCLIT struct {
	t   *testing.T
	dir string
}

func (c *routingCLIT) run(args ...string) (int, string, string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append(args, "-data", c.dir), &out, &errOut, noEnv)
	return code, out.String(), errOut.String()
}

func (c *routingCLIT) ok(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("postroom %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (c *routingCLIT) fails(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 1 {
		c.t.Fatalf("postroom %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return errOut
}

// withStore opens the folder's store for a set-up step and closes it again.
func (c *routingCLIT) withStore(f func(st store.Store)) {
	c.t.Helper()
	ctx := context.Background()
	st, err := app.OpenStore(ctx, c.dir, "")
	if err != nil {
		c.t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		c.t.Fatal(err)
	}
	f(st)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newRoutingCLI prepares a folder with a mailbox, one stored message, a team and users.
func newRoutingCLI(t *testing.T) (*routingCLIT, int64) {
	c := &routingCLIT{t: t, dir: t.TempDir()}
	c.ok("migrate")
	var msgID int64
	c.withStore(func(st store.Store) {
		ctx := context.Background()
		q, err := st.EnsureDefaultQueue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mb, err := st.CreateMailbox(ctx, store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap", Address: "support@example.com",
			Host: "imap.example.com", Port: 993, Security: "tls", Login: "support", Folder: "INBOX", MaxSizeMB: 10, PollInterval: time.Minute, QueueID: q.ID})
		if err != nil {
			t.Fatal(err)
		}
		raw := []byte("From: Carla <carla@example.net>\r\nTo: support@example.com\r\nSubject: Invoice 77 is wrong\r\nX-Priority: 1\r\nMessage-ID: <inv-77@example.net>\r\n\r\nPlease fix invoice 77.\r\n")
		m := message.Parse(raw)
		m.MailboxID, m.Direction, m.SourceID = mb.ID, store.Inbound, "imap:1:1"
		res, err := st.IngestMessage(ctx, store.InboundMessage{MailboxID: mb.ID, Raw: raw, Message: m})
		if err != nil {
			t.Fatal(err)
		}
		msgID = res.MessageID
		if _, err := st.CreateTeam(ctx, "Tier 2"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateUser(ctx, store.User{Username: "ana", DisplayName: "Ana", Role: store.RoleAgent, PasswordHash: "x"}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true}); err != nil {
			t.Fatal(err)
		}
	})
	return c, msgID
}

func TestRoutingCLI(t *testing.T) {
	c, msgID := newRoutingCLI(t)

	// A routing set-up from a file: calendars, schemas, SLA policies, rules, queue settings.
	setup := writeFile(t, "routing.json", `{
  "calendars": [{"name": "Office", "time_zone": "Europe/Berlin", "hours": [{"day": "mon", "start": "09:00", "end": "17:00"}]}],
  "schemas": [{"name": "Fast", "start": 10, "points": [{"age_s": 1800, "priority": 20}]}],
  "sla_policies": [{"name": "Gold", "first_response_s": 3600, "at_risk_percent": 80}],
  "rules": [{"name": "Invoices", "enabled": true, "conditions": [{"field": "subject", "op": "contains", "value": "invoice"}],
             "actions": {"tags": ["billing"]}, "queue": "Billing", "sla_policy": "Gold"}],
  "queues": [{"name": "Billing", "calendar": "Office", "schema": "Fast", "teams": ["Tier 2"], "agents": ["ana"]},
             {"name": "Escalations", "sla_policy": "Gold"}]
}`)
	out := c.ok("routing", "import", setup)
	if !strings.Contains(out, "imported 1 calendars (1 new), 1 schemas (1 new), 1 SLA policies (1 new), 1 rules (1 new) and the settings of 2 queues") {
		t.Errorf("import printed %q", out)
	}
	// Importing again updates by name: nothing new.
	if out := c.ok("routing", "import", setup); !strings.Contains(out, "1 calendars (0 new)") || !strings.Contains(out, "1 rules (0 new)") {
		t.Errorf("second import printed %q", out)
	}

	table := c.ok("queue", "list")
	if !regexp.MustCompile(`(?m)^Billing\s+yes\s+Office\s+Fast\s+-\s+ana\s+Tier 2\s+-\s+-$`).MatchString(table) ||
		!regexp.MustCompile(`(?m)^Escalations\s+yes\s+-\s+-\s+Gold`).MatchString(table) {
		t.Errorf("queue list:\n%s", table)
	}

	// queue set changes only the flags given, and is validated.
	c.ok("queue", "set", "Billing", "-sla", "Gold", "-max-depth", "500", "-overflow-after", "30m", "-overflow-teams", "Tier 2", "-overflow-boost", "10", "-relax", "60m -2, 4h drop")
	var listed struct{ Items []queueView }
	if err := json.Unmarshal([]byte(c.ok("queue", "list", "-json")), &listed); err != nil {
		t.Fatal(err)
	}
	var billing queueView
	for _, q := range listed.Items {
		if q.Name == "Billing" {
			billing = q
		}
	}
	if billing.Calendar != "Office" || billing.SLAPolicy != "Gold" || billing.MaxDepth != 500 || billing.OverflowAfterS != 1800 ||
		billing.OverflowBoost != 10 || len(billing.Relax) != 2 || !billing.Relax[1].DropSkills || billing.Agents[0] != "ana" {
		t.Errorf("Billing after set: %+v", billing)
	}
	if msg := c.fails("queue", "set", "Billing", "-overflow-teams", "", "-overflow-boost", "0"); !strings.Contains(msg, "overflow_after_s: overflow needs somewhere to go") {
		t.Errorf("overflow with nowhere to go: %s", msg)
	}
	// Retention is set by its flags and kept by a later set of other flags.
	c.ok("queue", "set", "Billing", "-retention-days", "365", "-retention-mode", "anonymise")
	c.ok("queue", "set", "Billing", "-max-depth", "400")
	if err := json.Unmarshal([]byte(c.ok("queue", "list", "-json")), &listed); err != nil {
		t.Fatal(err)
	}
	for _, q := range listed.Items {
		if q.Name == "Billing" && (q.RetentionDays != 365 || q.RetentionMode != "anonymise" || q.MaxDepth != 400) {
			t.Errorf("Billing's retention after another set: %d days, %q, max depth %d", q.RetentionDays, q.RetentionMode, q.MaxDepth)
		}
	}
	if msg := c.fails("queue", "set", "Billing", "-retention-mode", "shred"); !strings.Contains(msg, "retention_mode") {
		t.Errorf("bad retention mode: %s", msg)
	}
	if msg := c.fails("queue", "set", "Billing", "-calendar", "Nope"); !strings.Contains(msg, `no calendar named "Nope"`) {
		t.Errorf("unknown calendar: %s", msg)
	}
	if msg := c.fails("queue", "set", "Nope", "-max-depth", "1"); !strings.Contains(msg, `no queue named "Nope"`) {
		t.Errorf("unknown queue: %s", msg)
	}

	// rule add and list; an invalid regular expression is refused with the field.
	bad := writeFile(t, "bad.json", `{"name": "Bad", "conditions": [{"field": "subject", "op": "regex", "value": "("}]}`)
	if msg := c.fails("rule", "add", "-file", bad); !strings.Contains(msg, "conditions[0].value: enter a valid regular expression") {
		t.Errorf("bad rule: %s", msg)
	}
	urgent := writeFile(t, "urgent.json", `{"name": "Urgent", "enabled": true, "continue": true, "conditions": [{"field": "header", "op": "equals", "header": "X-Priority", "value": "1"}], "actions": {"priority_adjust": 50}}`)
	if out := c.ok("rule", "add", "-file", urgent); !strings.Contains(out, `added rule "Urgent"`) || !strings.Contains(out, "position 20") {
		t.Errorf("rule add printed %q", out)
	}
	if list := c.ok("rule", "list"); !regexp.MustCompile(`(?s)10\s+Invoices\s+yes\s+1\s+no.*20\s+Urgent\s+yes\s+1\s+yes`).MatchString(list) {
		t.Errorf("rule list:\n%s", list)
	}

	// rule test: the saved rules, then an unsaved one.
	out = c.ok("rule", "test", "-message-id", itoa(msgID))
	for _, want := range []string{`message ` + itoa(msgID) + ` from carla@example.net to support: "Invoice 77 is wrong"`,
		`rule "Invoices": applied, evaluation stopped`, `[x] subject contains "invoice"  seen: Invoice 77 is wrong`,
		`rule "Urgent": matched, but an earlier rule stopped the evaluation`, "actions: queue Billing; tags billing; SLA policy Gold"} {
		if !strings.Contains(out, want) {
			t.Errorf("rule test lacks %q:\n%s", want, out)
		}
	}
	out = c.ok("rule", "test", "-message-id", itoa(msgID), "-file", urgent, "-json")
	var res routing.RuleTest
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Rules[0].Applied || res.Actions.PriorityAdjust != 50 || res.Rules[0].Conditions[0].Seen != "1" {
		t.Errorf("rule test -file: %v\n%s", err, out)
	}
	if msg := c.fails("rule", "test", "-message-id", "999"); !strings.Contains(msg, "no stored message 999") {
		t.Errorf("unknown message: %s", msg)
	}

	// export writes names, and imports into an empty folder give the same export.
	exported := c.ok("routing", "export")
	for _, want := range []string{`"queue": "Billing"`, `"sla_policy": "Gold"`, `"calendar": "Office"`, `"teams": [`, `"Tier 2"`} {
		if !strings.Contains(exported, want) {
			t.Errorf("export lacks %s:\n%s", want, exported)
		}
	}
	file := filepath.Join(t.TempDir(), "export.json")
	c.ok("routing", "export", "-file", file)
	other, _ := newRoutingCLI(t)
	other.ok("routing", "import", file)
	if again := other.ok("routing", "export"); again != exported {
		t.Errorf("export after import differs:\n%s\n---\n%s", again, exported)
	}

	// Audited as the CLI user.
	c.withStore(func(st store.Store) {
		events, err := st.ListAudit(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range events {
			if strings.HasPrefix(e.Actor, "cli:") {
				seen[e.Action] = true
			}
		}
		for _, a := range []string{"calendar.save", "schema.save", "sla.save", "rule.save", "queue.settings", "queue.create"} {
			if !seen[a] {
				t.Errorf("no audit event %s: %v", a, seen)
			}
		}
	})

	// A bad import changes nothing.
	broken := writeFile(t, "broken.json", `{"calendars": [{"name": "Late", "hours": [{"day": "mon", "start": "09:00", "end": "17:00"}, {"day": "mon", "start": "16:00", "end": "18:00"}]}],
		"rules": [{"name": "X", "queue": "Nowhere"}]}`)
	if msg := c.fails("routing", "import", broken); !strings.Contains(msg, "hours[1]: mon 16:00-18:00 overlaps hours[0]") {
		t.Errorf("bad import: %s", msg)
	}
	if out := c.ok("routing", "export"); out != exported {
		t.Errorf("a refused import changed the configuration")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
