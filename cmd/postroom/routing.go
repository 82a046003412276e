package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// postroom queue, rule and routing: the routing configuration from the command line,
// with the validation of the pages and the API, audited as "cli:<os user>".

const queueUsage = `Usage: postroom queue COMMAND [flags]

Commands:
  list                 the queues with a summary of their routing settings (-json)
  set NAME [flags]     change the routing settings given as flags; the others keep their value

Flags of set (names, not ids; an empty value clears a setting):
  -calendar NAME -schema NAME -sla NAME
  -agents user1,user2 -teams team1,team2
  -max-depth N
  -overflow-after 30m -overflow-teams t1,t2 -overflow-queue NAME -overflow-boost 10
  -offer-timeout 2m -preferred-wait 7d -return-after 1h
  -relax "60m -2, 4h drop"   skill relaxation rings
  -retention-days 365 -retention-mode delete|anonymise   remove done conversations
                             after so many days (0: keep them)

The same -data folder, or POSTROOM_DATABASE_URL, as "postroom serve".
`

const ruleUsage = `Usage: postroom rule COMMAND [flags]

Commands:
  list                              the classification rules in evaluation order (-json)
  add -file rule.json               add a rule (JSON as the API's POST /api/v1/rules), last unless it has a position
  test -message-id N [-file F]      run the rule in F, or without -file the saved rules, on a stored
                                    message and show each condition with the value it saw (-json);
                                    -work-item N takes the work item's latest message

The same -data folder, or POSTROOM_DATABASE_URL, as "postroom serve".
`

const routingUsage = `Usage: postroom routing COMMAND [flags]

Commands:
  export [-file F]     write calendars, schemas, SLA policies, rules and queue settings as JSON
                       (to standard output without -file); references are by name
  import FILE          create or update them by name from such a file; everything is
                       checked before anything is written

The same -data folder, or POSTROOM_DATABASE_URL, as "postroom serve".
`

// routingFlags are the flags of the queue, rule and routing commands.
type routingFlags struct {
	json                                        bool
	file                                        string
	messageID, workItem                         int64
	calendar, schema, sla, agents, teams        string
	maxDepth, overflowBoost                     int
	overflowAfter, overflowTeams, overflowQueue string
	offerTimeout, preferredWait, returnAfter    string
	relax                                       string
	retentionDays                               int
	retentionMode                               string
	skills, languages                           string
	capacity                                    int
	set                                         map[string]bool
}

type routingCommand struct {
	args             string
	minArgs, maxArgs int
	flags            func(fs *flag.FlagSet, o *routingFlags)
	run              func(c *routingCLI, ctx context.Context, pos []string) error
}

func jsonFlag(fs *flag.FlagSet, o *routingFlags) {
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

var queueCommands = map[string]routingCommand{
	"list": {args: "[-json]", flags: jsonFlag, run: (*routingCLI).queueList},
	"set": {args: "NAME [flags]", minArgs: 1, maxArgs: 1, run: (*routingCLI).queueSet, flags: func(fs *flag.FlagSet, o *routingFlags) {
		fs.StringVar(&o.calendar, "calendar", "", "business calendar name")
		fs.StringVar(&o.schema, "schema", "", "prioritisation schema name")
		fs.StringVar(&o.sla, "sla", "", "SLA policy name")
		fs.StringVar(&o.agents, "agents", "", "user names of the agents serving the queue, comma-separated")
		fs.StringVar(&o.teams, "teams", "", "team names serving the queue, comma-separated")
		fs.IntVar(&o.maxDepth, "max-depth", 0, "items waiting before new ones overflow at once (0: no limit)")
		fs.StringVar(&o.overflowAfter, "overflow-after", "", "overflow an item unassigned this long, e.g. 30m (empty: never)")
		fs.StringVar(&o.overflowTeams, "overflow-teams", "", "teams to overflow to, comma-separated")
		fs.StringVar(&o.overflowQueue, "overflow-queue", "", "queue whose agents get overflowed items")
		fs.IntVar(&o.overflowBoost, "overflow-boost", 0, "priority added to an overflowed item")
		fs.StringVar(&o.offerTimeout, "offer-timeout", "", "how long an agent has to accept an offer, e.g. 2m")
		fs.StringVar(&o.preferredWait, "preferred-wait", "", "how long a reply waits for the previous agent, e.g. 1d")
		fs.StringVar(&o.returnAfter, "return-after", "", "return an absent agent's items after, e.g. 1h")
		fs.StringVar(&o.relax, "relax", "", `skill relaxation rings, e.g. "60m -2, 4h drop"`)
		fs.IntVar(&o.retentionDays, "retention-days", 0, "delete or anonymise done conversations after so many days (0: keep them)")
		fs.StringVar(&o.retentionMode, "retention-mode", "", "what retention does: delete or anonymise")
	}},
}

var ruleCommands = map[string]routingCommand{
	"list": {args: "[-json]", flags: jsonFlag, run: (*routingCLI).ruleList},
	"add": {args: "-file rule.json", run: (*routingCLI).ruleAdd, flags: func(fs *flag.FlagSet, o *routingFlags) {
		fs.StringVar(&o.file, "file", "", "the rule as JSON (- for standard input)")
	}},
	"test": {args: "-message-id N [-file rule.json]", run: (*routingCLI).ruleTest, flags: func(fs *flag.FlagSet, o *routingFlags) {
		fs.StringVar(&o.file, "file", "", "a rule as JSON to test (without it: the saved rules)")
		fs.Int64Var(&o.messageID, "message-id", 0, "the stored message to test on")
		fs.Int64Var(&o.workItem, "work-item", 0, "instead of -message-id: the work item whose latest message to test on")
		jsonFlag(fs, o)
	}},
}

var routingCommands = map[string]routingCommand{
	"export": {args: "[-file F]", run: (*routingCLI).export, flags: func(fs *flag.FlagSet, o *routingFlags) {
		fs.StringVar(&o.file, "file", "", "write to this file instead of standard output")
	}},
	"import": {args: "FILE", minArgs: 1, maxArgs: 1, run: (*routingCLI).importFile},
}

func runQueue(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return runRoutingGroup(ctx, "queue", queueUsage, queueCommands, args, stdout, stderr, getenv)
}

func runRule(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return runRoutingGroup(ctx, "rule", ruleUsage, ruleCommands, args, stdout, stderr, getenv)
}

func runRouting(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return runRoutingGroup(ctx, "routing", routingUsage, routingCommands, args, stdout, stderr, getenv)
}

// routingCLI runs one command against the opened store.
type routingCLI struct {
	st    store.Store
	actor string
	out   io.Writer
	o     *routingFlags
}

func runRoutingGroup(ctx context.Context, group, usage string, cmds map[string]routingCommand, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	name, args := args[0], args[1:]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "unknown %s command %q\n\n%s", group, name, usage)
		return errUsage
	}
	fs := flag.NewFlagSet("postroom "+group+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.register(fs, getenv, false)
	if getenv(envLogLevel) == "" {
		common.logLevel = "warn"
	}
	o := &routingFlags{set: map[string]bool{}}
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: postroom %s %s %s\n\nFlags:\n", group, name, cmd.args)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < cmd.minArgs || len(pos) > cmd.maxArgs {
		fmt.Fprintf(stderr, "postroom %s %s takes %s\n", group, name, cmd.args)
		fs.Usage()
		return errUsage
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	a, _, err := common.openApp(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	c := &routingCLI{st: a.Store, actor: cliActor(getenv), out: stdout, o: o}
	return cmd.run(c, ctx, pos)
}

func (c *routingCLI) audit(ctx context.Context, action, object, old, new string) {
	// A failed audit write is not the command's failure, as on the pages.
	_ = c.st.AddAudit(ctx, store.AuditEvent{At: time.Now(), Actor: c.actor, Action: action, Object: object, Old: old, New: new})
}

func (c *routingCLI) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// explainRouting turns a routing validation error into one line per field.
func explainRouting(what string, err error) error {
	var verr *routing.ValidationError
	if !errors.As(err, &verr) {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the %s has errors:", what)
	for _, field := range slices.Sorted(maps.Keys(verr.Fields)) {
		fmt.Fprintf(&b, "\n  %s: %s", field, verr.Fields[field])
	}
	return errors.New(b.String())
}

// ---- names ----

// names resolves the names of the routing configuration both ways.
type names struct {
	queues                   []store.Queue
	calendars, schemas, slas []store.RoutingObject
	users                    []store.User
	teams                    []store.Team
}

func (c *routingCLI) names(ctx context.Context) (*names, error) {
	n := &names{}
	var err error
	if n.queues, err = c.st.ListQueues(ctx); err != nil {
		return nil, err
	}
	if n.calendars, err = c.st.ListRoutingObjects(ctx, store.KindCalendar); err != nil {
		return nil, err
	}
	if n.schemas, err = c.st.ListRoutingObjects(ctx, store.KindSchema); err != nil {
		return nil, err
	}
	if n.slas, err = c.st.ListRoutingObjects(ctx, store.KindSLA); err != nil {
		return nil, err
	}
	if n.users, err = c.st.ListUsers(ctx); err != nil {
		return nil, err
	}
	if n.teams, err = c.st.ListTeams(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

func objectID(list []store.RoutingObject, name, what, hint string) (int64, error) {
	if strings.TrimSpace(name) == "" {
		return 0, nil
	}
	for _, o := range list {
		if strings.EqualFold(o.Name, strings.TrimSpace(name)) {
			return o.ID, nil
		}
	}
	return 0, fmt.Errorf("no %s named %q: %s", what, name, hint)
}

func objName(list []store.RoutingObject, id int64) string {
	for _, o := range list {
		if o.ID == id {
			return o.Name
		}
	}
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("#%d", id)
}

func (n *names) queueID(name string) (int64, error) {
	if strings.TrimSpace(name) == "" {
		return 0, nil
	}
	for _, q := range n.queues {
		if strings.EqualFold(q.Name, strings.TrimSpace(name)) {
			return q.ID, nil
		}
	}
	return 0, fmt.Errorf("no queue named %q: see postroom queue list", name)
}

func (n *names) queueName(id int64) string {
	for _, q := range n.queues {
		if q.ID == id {
			return q.Name
		}
	}
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("#%d", id)
}

func (n *names) userIDs(list []string) ([]int64, error) {
	var ids []int64
	for _, name := range list {
		i := slices.IndexFunc(n.users, func(u store.User) bool { return strings.EqualFold(u.Username, name) })
		if i < 0 {
			return nil, fmt.Errorf("no user named %q: create the user first", name)
		}
		ids = append(ids, n.users[i].ID)
	}
	return ids, nil
}

func (n *names) userNames(ids []int64) []string {
	out := []string{}
	for _, id := range ids {
		if i := slices.IndexFunc(n.users, func(u store.User) bool { return u.ID == id }); i >= 0 {
			out = append(out, n.users[i].Username)
		}
	}
	return out
}

func (n *names) teamIDs(list []string) ([]int64, error) {
	var ids []int64
	for _, name := range list {
		i := slices.IndexFunc(n.teams, func(t store.Team) bool { return strings.EqualFold(t.Name, name) })
		if i < 0 {
			return nil, fmt.Errorf("no team named %q: create the team first", name)
		}
		ids = append(ids, n.teams[i].ID)
	}
	return ids, nil
}

func (n *names) teamNames(ids []int64) []string {
	out := []string{}
	for _, id := range ids {
		if i := slices.IndexFunc(n.teams, func(t store.Team) bool { return t.ID == id }); i >= 0 {
			out = append(out, n.teams[i].Name)
		}
	}
	return out
}

func splitNames(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// cliDuration reads "90", "30m", "4h", "2d" as seconds; empty is 0.
func cliDuration(flagName, s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseInt(d, 10, 64); err == nil && n >= 0 {
			return n * 86400, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("-%s %q: enter seconds or a duration such as 30m, 4h, 2d", flagName, s)
	}
	return int64(d / time.Second), nil
}

// parseRelax reads rings as "60m -2, 4h drop".
func parseRelax(s string) ([]routing.RelaxStep, error) {
	var steps []routing.RelaxStep
	for part := range strings.SplitSeq(s, ",") {
		fields := strings.Fields(part)
		if len(fields) == 0 {
			continue
		}
		after, err := cliDuration("relax", fields[0])
		if err != nil || len(fields) < 2 {
			return nil, fmt.Errorf(`-relax %q: enter rings as "60m -2, 4h drop" (time unassigned, then -levels or drop)`, part)
		}
		st := routing.RelaxStep{AfterS: after}
		for _, t := range fields[1:] {
			if strings.EqualFold(t, "drop") {
				st.DropSkills = true
				continue
			}
			n, err := strconv.Atoi(strings.TrimPrefix(t, "-"))
			if err != nil || !strings.HasPrefix(t, "-") {
				return nil, fmt.Errorf(`-relax %q: enter rings as "60m -2, 4h drop" (time unassigned, then -levels or drop)`, part)
			}
			st.DropLevels = n
		}
		steps = append(steps, st)
	}
	return steps, nil
}

func fmtSeconds(s int64) string {
	if s <= 0 {
		return "-"
	}
	return (time.Duration(s) * time.Second).String()
}

// ---- queue ----

type queueView struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Enabled  bool   `json:"enabled"`
	queueDoc `json:"settings"`
}

func (c *routingCLI) queueList(ctx context.Context, _ []string) error {
	n, err := c.names(ctx)
	if err != nil {
		return err
	}
	var views []queueView
	for _, q := range n.queues {
		views = append(views, queueView{ID: q.ID, Name: q.Name, Enabled: q.Enabled, queueDoc: n.queueDocOf(q)})
	}
	if c.o.json {
		return c.printJSON(struct {
			Items []queueView `json:"items"`
		}{views})
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tENABLED\tCALENDAR\tSCHEMA\tSLA\tAGENTS\tTEAMS\tMAX-DEPTH\tOVERFLOW")
	dash := func(s string) string { return cmp.Or(s, "-") }
	for _, v := range views {
		overflow := "-"
		if v.OverflowAfterS > 0 {
			overflow = "after " + fmtSeconds(v.OverflowAfterS)
			if len(v.OverflowTeams) > 0 {
				overflow += " to " + strings.Join(v.OverflowTeams, ",")
			}
			if v.OverflowQueue != "" {
				overflow += " to queue " + v.OverflowQueue
			}
			if v.OverflowBoost != 0 {
				overflow += fmt.Sprintf(" +%d", v.OverflowBoost)
			}
		}
		depth := "-"
		if v.MaxDepth > 0 {
			depth = strconv.Itoa(v.MaxDepth)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, yesNo(v.Enabled), dash(v.Calendar), dash(v.Schema), dash(v.SLAPolicy),
			dash(strings.Join(v.Agents, ",")), dash(strings.Join(v.Teams, ",")), depth, overflow)
	}
	return tw.Flush()
}

func (c *routingCLI) queueSet(ctx context.Context, pos []string) error {
	n, err := c.names(ctx)
	if err != nil {
		return err
	}
	qid, err := n.queueID(pos[0])
	if err != nil {
		return err
	}
	q, err := c.st.Queue(ctx, qid)
	if err != nil {
		return err
	}
	d := n.queueDocOf(q)
	o, set := c.o, c.o.set
	if len(set) == 0 {
		return fmt.Errorf("give the settings to change as flags, e.g. -calendar Office -max-depth 500: see postroom queue -h")
	}
	for flagName, dst := range map[string]*string{"calendar": &d.Calendar, "schema": &d.Schema, "sla": &d.SLAPolicy, "overflow-queue": &d.OverflowQueue} {
		v := map[string]string{"calendar": o.calendar, "schema": o.schema, "sla": o.sla, "overflow-queue": o.overflowQueue}[flagName]
		if set[flagName] {
			*dst = v
		}
	}
	if set["agents"] {
		d.Agents = splitNames(o.agents)
	}
	if set["teams"] {
		d.Teams = splitNames(o.teams)
	}
	if set["overflow-teams"] {
		d.OverflowTeams = splitNames(o.overflowTeams)
	}
	if set["max-depth"] {
		d.MaxDepth = o.maxDepth
	}
	if set["overflow-boost"] {
		d.OverflowBoost = o.overflowBoost
	}
	if set["retention-days"] {
		d.RetentionDays = o.retentionDays
	}
	if set["retention-mode"] {
		d.RetentionMode = o.retentionMode
	}
	for flagName, pair := range map[string]struct {
		v   string
		dst *int64
	}{"overflow-after": {o.overflowAfter, &d.OverflowAfterS}, "offer-timeout": {o.offerTimeout, &d.OfferTimeoutS},
		"preferred-wait": {o.preferredWait, &d.PreferredWaitS}, "return-after": {o.returnAfter, &d.ReturnAfterS}} {
		if set[flagName] {
			if *pair.dst, err = cliDuration(flagName, pair.v); err != nil {
				return err
			}
		}
	}
	if set["relax"] {
		if d.Relax, err = parseRelax(o.relax); err != nil {
			return err
		}
	}
	s, err := n.settingsOf(d, q.ID)
	if err != nil {
		return err
	}
	spec, _ := json.Marshal(s)
	if err := c.st.SetQueueSpec(ctx, q.ID, q.Name, spec, store.AuditEvent{Actor: c.actor, Action: "queue.settings",
		Old: string(q.Spec), New: string(spec)}); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "saved the routing settings of queue %q\n", q.Name)
	return nil
}

// queueDoc is a queue's routing settings with names instead of ids, as export writes them.
type queueDoc struct {
	Name           string              `json:"name,omitempty"`
	Calendar       string              `json:"calendar,omitempty"`
	Schema         string              `json:"schema,omitempty"`
	SLAPolicy      string              `json:"sla_policy,omitempty"`
	Agents         []string            `json:"agents,omitempty"`
	Teams          []string            `json:"teams,omitempty"`
	MaxDepth       int                 `json:"max_depth,omitempty"`
	OverflowAfterS int64               `json:"overflow_after_s,omitempty"`
	OverflowTeams  []string            `json:"overflow_teams,omitempty"`
	OverflowQueue  string              `json:"overflow_queue,omitempty"`
	OverflowBoost  int                 `json:"overflow_boost,omitempty"`
	OfferTimeoutS  int64               `json:"offer_timeout_s,omitempty"`
	Relax          []routing.RelaxStep `json:"relax,omitempty"`
	PreferredWaitS int64               `json:"preferred_wait_s,omitempty"`
	ReturnAfterS   int64               `json:"return_after_s,omitempty"`
	RetentionDays  int                 `json:"retention_days,omitempty"`
	RetentionMode  string              `json:"retention_mode,omitempty"`
}

func (n *names) queueDocOf(q store.Queue) queueDoc {
	var s routing.QueueSettings
	if len(q.Spec) > 0 {
		_ = json.Unmarshal(q.Spec, &s)
	}
	d := queueDoc{Calendar: objName(n.calendars, s.CalendarID), Schema: objName(n.schemas, s.SchemaID), SLAPolicy: objName(n.slas, s.SLAPolicyID),
		MaxDepth: s.MaxDepth, OverflowAfterS: s.OverflowAfterS, OverflowQueue: n.queueName(s.OverflowQueueID), OverflowBoost: s.OverflowBoost,
		OfferTimeoutS: s.OfferTimeoutS, Relax: s.Relax, PreferredWaitS: s.PreferredWaitS, ReturnAfterS: s.ReturnAfterS,
		RetentionDays: s.RetentionDays, RetentionMode: s.RetentionMode}
	if len(s.Agents) > 0 {
		d.Agents = n.userNames(s.Agents)
	}
	if len(s.Teams) > 0 {
		d.Teams = n.teamNames(s.Teams)
	}
	if len(s.OverflowTeams) > 0 {
		d.OverflowTeams = n.teamNames(s.OverflowTeams)
	}
	return d
}

// settingsOf resolves a queueDoc's names and validates the settings.
func (n *names) settingsOf(d queueDoc, queueID int64) (routing.QueueSettings, error) {
	s := routing.QueueSettings{MaxDepth: d.MaxDepth, OverflowAfterS: d.OverflowAfterS, OverflowBoost: d.OverflowBoost,
		OfferTimeoutS: d.OfferTimeoutS, Relax: d.Relax, PreferredWaitS: d.PreferredWaitS, ReturnAfterS: d.ReturnAfterS,
		RetentionDays: d.RetentionDays, RetentionMode: d.RetentionMode}
	var err error
	if s.CalendarID, err = objectID(n.calendars, d.Calendar, "calendar", "see the Calendars page or postroom routing export"); err != nil {
		return s, err
	}
	if s.SchemaID, err = objectID(n.schemas, d.Schema, "schema", "see the Schemas page or postroom routing export"); err != nil {
		return s, err
	}
	if s.SLAPolicyID, err = objectID(n.slas, d.SLAPolicy, "SLA policy", "see the SLA policies page or postroom routing export"); err != nil {
		return s, err
	}
	if s.OverflowQueueID, err = n.queueID(d.OverflowQueue); err != nil {
		return s, err
	}
	if s.OverflowQueueID != 0 && s.OverflowQueueID == queueID {
		return s, errors.New("a queue cannot overflow to itself: choose another -overflow-queue")
	}
	if s.Agents, err = n.userIDs(d.Agents); err != nil {
		return s, err
	}
	if s.Teams, err = n.teamIDs(d.Teams); err != nil {
		return s, err
	}
	if s.OverflowTeams, err = n.teamIDs(d.OverflowTeams); err != nil {
		return s, err
	}
	if err := s.Validate(); err != nil {
		return s, explainRouting("queue", err)
	}
	return s, nil
}

// ---- rule ----

func (c *routingCLI) ruleList(ctx context.Context, _ []string) error {
	rules, err := routing.SavedRules(ctx, c.st)
	if err != nil {
		return err
	}
	slices.SortStableFunc(rules, func(a, b routing.Rule) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	if c.o.json {
		if rules == nil {
			rules = []routing.Rule{}
		}
		return c.printJSON(struct {
			Items []routing.Rule `json:"items"`
		}{rules})
	}
	if len(rules) == 0 {
		fmt.Fprintln(c.out, "no rules: add one with postroom rule add -file rule.json")
		return nil
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POSITION\tNAME\tENABLED\tCONDITIONS\tCONTINUE")
	for _, r := range rules {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", r.Position, r.Name, yesNo(r.Enabled), len(r.Conditions), yesNo(r.Continue))
	}
	return tw.Flush()
}

func readRuleFile(path string) (routing.Rule, bool, error) {
	var r routing.Rule
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return r, false, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return r, false, fmt.Errorf("%s: not a JSON object: %w", path, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("%s: not a rule of the documented shape: %w", path, err)
	}
	_, hasPosition := probe["position"]
	return r, hasPosition, nil
}

func (c *routingCLI) ruleAdd(ctx context.Context, _ []string) error {
	if c.o.file == "" {
		return errors.New("give the rule with -file rule.json (JSON as POST /api/v1/rules takes)")
	}
	r, hasPosition, err := readRuleFile(c.o.file)
	if err != nil {
		return err
	}
	r.ID = 0
	if !hasPosition {
		rules, err := routing.SavedRules(ctx, c.st)
		if err != nil {
			return err
		}
		r.Position = 10
		for _, x := range rules {
			r.Position = max(r.Position, x.Position+10)
		}
	}
	if err := r.Validate(); err != nil {
		return explainRouting("rule", err)
	}
	spec, _ := json.Marshal(r)
	o, err := c.st.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindRule, Name: strings.TrimSpace(r.Name), Position: r.Position, Spec: spec},
		store.AuditEvent{Actor: c.actor, Action: "rule.save", New: string(spec)})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("a rule named %q exists: choose another name", r.Name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "added rule %q (id %d, position %d)\n", o.Name, o.ID, o.Position)
	return nil
}

func (c *routingCLI) ruleTest(ctx context.Context, _ []string) error {
	id := c.o.messageID
	if id == 0 && c.o.workItem > 0 {
		wi, err := c.st.WorkItem(ctx, c.o.workItem)
		if err != nil {
			return fmt.Errorf("work item %d: %w", c.o.workItem, err)
		}
		id = wi.MessageID
	}
	if id <= 0 {
		return errors.New("give the message to test on: -message-id N (or -work-item N)")
	}
	var res routing.RuleTest
	var err error
	if c.o.file != "" {
		r, _, ferr := readRuleFile(c.o.file)
		if ferr != nil {
			return ferr
		}
		res, err = routing.TryRule(ctx, c.st, r, id)
	} else {
		rules, lerr := routing.SavedRules(ctx, c.st)
		if lerr != nil {
			return lerr
		}
		res, err = routing.TryRules(ctx, c.st, rules, id)
	}
	if store.IsNotFound(err) {
		return fmt.Errorf("no stored message %d: check -message-id", id)
	}
	if err != nil {
		return explainRouting("rule", err)
	}
	if c.o.json {
		return c.printJSON(res)
	}
	n, err := c.names(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "message %d from %s to %s: %q\n", res.MessageID, res.From, res.Mailbox, res.Subject)
	for _, t := range res.Rules {
		fmt.Fprintf(c.out, "rule %q: %s\n", t.Name, t.Outcome)
		for _, ct := range t.Conditions {
			mark := "[ ]"
			if ct.Matched {
				mark = "[x]"
			}
			cond := ct.Condition
			field := cond.Field
			if cond.Field == routing.FieldHeader {
				field += " " + cond.Header
			}
			neg := ""
			if cond.Negate {
				neg = "not "
			}
			fmt.Fprintf(c.out, "  %s %s %s%s %q  seen: %s\n", mark, field, neg, cond.Op, cond.Value, ct.Seen)
		}
	}
	fmt.Fprintf(c.out, "actions: %s\n", n.describe(res.Actions))
	return nil
}

func (n *names) describe(a routing.Actions) string {
	var out []string
	if a.QueueID != 0 {
		out = append(out, "queue "+n.queueName(a.QueueID))
	}
	if a.Category != "" {
		out = append(out, "category "+a.Category)
	}
	if a.PriorityAdjust != 0 {
		out = append(out, fmt.Sprintf("priority %+d", a.PriorityAdjust))
	}
	if len(a.Skills) > 0 {
		var sk []string
		for _, k := range slices.Sorted(maps.Keys(a.Skills)) {
			sk = append(sk, fmt.Sprintf("%s:%d", k, a.Skills[k]))
		}
		out = append(out, "skills "+strings.Join(sk, ","))
	}
	if a.Language != "" {
		out = append(out, "language "+a.Language)
	}
	if len(a.Tags) > 0 {
		out = append(out, "tags "+strings.Join(a.Tags, ","))
	}
	if a.SLAPolicyID != 0 {
		out = append(out, "SLA policy "+objName(n.slas, a.SLAPolicyID))
	}
	if a.SchemaID != 0 {
		out = append(out, "schema "+objName(n.schemas, a.SchemaID))
	}
	if a.Close != "" {
		out = append(out, "close as "+a.Close)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

// ---- routing export / import ----

// routingDoc is the whole routing configuration with references by name.
type routingDoc struct {
	Calendars   []routing.Calendar  `json:"calendars"`
	Schemas     []routing.Schema    `json:"schemas"`
	SLAPolicies []routing.SLAPolicy `json:"sla_policies"`
	Rules       []ruleDoc           `json:"rules"`
	Queues      []queueDoc          `json:"queues"`
}

// ruleDoc is a rule whose actions name their queue, SLA policy and schema.
type ruleDoc struct {
	routing.Rule
	Queue     string `json:"queue,omitempty"`
	SLAPolicy string `json:"sla_policy,omitempty"`
	Schema    string `json:"schema,omitempty"`
}

func (c *routingCLI) export(ctx context.Context, _ []string) error {
	n, err := c.names(ctx)
	if err != nil {
		return err
	}
	doc := routingDoc{Calendars: []routing.Calendar{}, Schemas: []routing.Schema{}, SLAPolicies: []routing.SLAPolicy{}, Rules: []ruleDoc{}, Queues: []queueDoc{}}
	for _, o := range n.calendars {
		cal, err := routing.CalendarOf(o)
		if err != nil {
			return err
		}
		cal.ID = 0
		doc.Calendars = append(doc.Calendars, cal)
	}
	for _, o := range n.schemas {
		s, err := routing.SchemaOf(o)
		if err != nil {
			return err
		}
		s.ID = 0
		doc.Schemas = append(doc.Schemas, s)
	}
	for _, o := range n.slas {
		p, err := routing.SLAPolicyOf(o)
		if err != nil {
			return err
		}
		p.ID = 0
		doc.SLAPolicies = append(doc.SLAPolicies, p)
	}
	rules, err := routing.SavedRules(ctx, c.st)
	if err != nil {
		return err
	}
	slices.SortStableFunc(rules, func(a, b routing.Rule) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	for _, r := range rules {
		d := ruleDoc{Rule: r, Queue: n.queueName(r.Actions.QueueID), SLAPolicy: objName(n.slas, r.Actions.SLAPolicyID), Schema: objName(n.schemas, r.Actions.SchemaID)}
		d.ID, d.Actions.QueueID, d.Actions.SLAPolicyID, d.Actions.SchemaID = 0, 0, 0, 0
		doc.Rules = append(doc.Rules, d)
	}
	for _, q := range n.queues {
		d := n.queueDocOf(q)
		d.Name = q.Name
		doc.Queues = append(doc.Queues, d)
	}
	out := c.out
	if c.o.file != "" {
		f, err := os.Create(c.o.file)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	if c.o.file != "" {
		fmt.Fprintf(c.out, "exported %d calendars, %d schemas, %d SLA policies, %d rules and %d queues to %s\n",
			len(doc.Calendars), len(doc.Schemas), len(doc.SLAPolicies), len(doc.Rules), len(doc.Queues), c.o.file)
	}
	return nil
}

func (c *routingCLI) importFile(ctx context.Context, pos []string) error {
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	var doc routingDoc
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: not a routing export (calendars, schemas, sla_policies, rules, queues): %w", pos[0], err)
	}
	// Check everything first.
	for i, cal := range doc.Calendars {
		if err := cal.Validate(); err != nil {
			return explainRouting(fmt.Sprintf("calendar %q (calendars[%d])", cal.Name, i), err)
		}
	}
	for i, s := range doc.Schemas {
		if err := s.Validate(); err != nil {
			return explainRouting(fmt.Sprintf("schema %q (schemas[%d])", s.Name, i), err)
		}
	}
	for i, p := range doc.SLAPolicies {
		if err := p.Validate(); err != nil {
			return explainRouting(fmt.Sprintf("SLA policy %q (sla_policies[%d])", p.Name, i), err)
		}
	}
	n, err := c.names(ctx)
	if err != nil {
		return err
	}
	// Names the file brings are known from here on (their ids are filled when saved).
	known := func(list []store.RoutingObject, kind string, names []string) []store.RoutingObject {
		for _, name := range names {
			if !slices.ContainsFunc(list, func(o store.RoutingObject) bool { return strings.EqualFold(o.Name, name) }) {
				list = append(list, store.RoutingObject{ID: -1, Kind: kind, Name: name})
			}
		}
		return list
	}
	var calNames, schemaNames, slaNames []string
	for _, x := range doc.Calendars {
		calNames = append(calNames, x.Name)
	}
	for _, x := range doc.Schemas {
		schemaNames = append(schemaNames, x.Name)
	}
	for _, x := range doc.SLAPolicies {
		slaNames = append(slaNames, x.Name)
	}
	check := &names{queues: n.queues, users: n.users, teams: n.teams,
		calendars: known(slices.Clone(n.calendars), store.KindCalendar, calNames),
		schemas:   known(slices.Clone(n.schemas), store.KindSchema, schemaNames),
		slas:      known(slices.Clone(n.slas), store.KindSLA, slaNames)}
	for _, q := range doc.Queues {
		if _, err := check.queueID(q.Name); err != nil {
			check.queues = append(check.queues, store.Queue{ID: -2 - int64(len(check.queues)), Name: q.Name})
		}
	}
	for i, r := range doc.Rules {
		if _, err := check.resolveRule(r); err != nil {
			return fmt.Errorf("rule %q (rules[%d]): %w", r.Name, i, err)
		}
	}
	for i, q := range doc.Queues {
		qid, _ := check.queueID(q.Name)
		if _, err := check.settingsOf(q, qid); err != nil {
			return fmt.Errorf("queue %q (queues[%d]): %w", q.Name, i, err)
		}
	}

	// Then write: objects by name (updated when the name exists), rules, queues.
	counts := map[string][2]int{}
	save := func(kind string, list *[]store.RoutingObject, name string, position int, spec any) error {
		b, _ := json.Marshal(spec)
		o := store.RoutingObject{Kind: kind, Name: strings.TrimSpace(name), Position: position, Spec: b}
		var old string
		i := slices.IndexFunc(*list, func(x store.RoutingObject) bool { return strings.EqualFold(x.Name, o.Name) && x.ID > 0 })
		isNew := i < 0
		if !isNew {
			o.ID, old = (*list)[i].ID, string((*list)[i].Spec)
		}
		saved, err := c.st.SaveRoutingObject(ctx, o, store.AuditEvent{Actor: c.actor, Action: kind + ".save", Old: old, New: string(b)})
		if err != nil {
			return fmt.Errorf("save %s %q: %w", kind, name, err)
		}
		if isNew {
			*list = append(*list, saved)
		}
		cnt := counts[kind]
		cnt[0]++
		if isNew {
			cnt[1]++
		}
		counts[kind] = cnt
		return nil
	}
	for _, cal := range doc.Calendars {
		cal.ID = 0
		if err := save(store.KindCalendar, &n.calendars, cal.Name, 0, cal); err != nil {
			return err
		}
	}
	for _, s := range doc.Schemas {
		s.ID = 0
		if err := save(store.KindSchema, &n.schemas, s.Name, 0, s); err != nil {
			return err
		}
	}
	for _, p := range doc.SLAPolicies {
		p.ID = 0
		if err := save(store.KindSLA, &n.slas, p.Name, 0, p); err != nil {
			return err
		}
	}
	for _, q := range doc.Queues {
		if _, err := n.queueID(q.Name); err != nil {
			created, err := c.st.CreateQueue(ctx, store.Queue{Name: strings.TrimSpace(q.Name), Enabled: true})
			if err != nil {
				return fmt.Errorf("create queue %q: %w", q.Name, err)
			}
			c.audit(ctx, "queue.create", fmt.Sprintf("queue:%d", created.ID), "", created.Name)
			n.queues = append(n.queues, created)
		}
	}
	rules, err := c.st.ListRoutingObjects(ctx, store.KindRule)
	if err != nil {
		return err
	}
	for i, rd := range doc.Rules {
		r, err := n.resolveRule(rd)
		if err != nil {
			return err
		}
		if r.Position == 0 {
			r.Position = (i + 1) * 10
		}
		if err := save(store.KindRule, &rules, r.Name, r.Position, r); err != nil {
			return err
		}
	}
	for _, qd := range doc.Queues {
		qid, _ := n.queueID(qd.Name)
		s, err := n.settingsOf(qd, qid)
		if err != nil {
			return err
		}
		q, err := c.st.Queue(ctx, qid)
		if err != nil {
			return err
		}
		spec, _ := json.Marshal(s)
		if err := c.st.SetQueueSpec(ctx, q.ID, q.Name, spec, store.AuditEvent{Actor: c.actor, Action: "queue.settings",
			Old: string(q.Spec), New: string(spec)}); err != nil {
			return err
		}
	}
	line := func(kind, label string) string {
		cnt := counts[kind]
		return fmt.Sprintf("%d %s (%d new)", cnt[0], label, cnt[1])
	}
	fmt.Fprintf(c.out, "imported %s, %s, %s, %s and the settings of %d queues\n", line(store.KindCalendar, "calendars"),
		line(store.KindSchema, "schemas"), line(store.KindSLA, "SLA policies"), line(store.KindRule, "rules"), len(doc.Queues))
	return nil
}

// resolveRule turns a ruleDoc's names into ids and validates the rule.
func (n *names) resolveRule(d ruleDoc) (routing.Rule, error) {
	r := d.Rule
	r.ID = 0
	var err error
	if d.Queue != "" {
		if r.Actions.QueueID, err = n.queueID(d.Queue); err != nil {
			return r, err
		}
	}
	if r.Actions.SLAPolicyID, err = objectID(n.slas, d.SLAPolicy, "SLA policy", "add it to sla_policies"); err != nil {
		return r, err
	}
	if r.Actions.SchemaID, err = objectID(n.schemas, d.Schema, "schema", "add it to schemas"); err != nil {
		return r, err
	}
	// Placeholder ids of objects still to be created validate like real ones.
	check := r
	check.Actions.QueueID, check.Actions.SLAPolicyID, check.Actions.SchemaID = max(0, r.Actions.QueueID), max(0, r.Actions.SLAPolicyID), max(0, r.Actions.SchemaID)
	if err := check.Validate(); err != nil {
		return r, explainRouting("rule", err)
	}
	return r, nil
}
