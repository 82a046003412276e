package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/postroom/postroom/internal/routing"
)

// postroom agent: agents' routing profiles from the command line, with the rules of the
// Agents page and PUT /api/v1/agents/{id}, audited as "cli:<os user>".

const agentUsage = `Usage: postroom agent COMMAND [flags]

Commands:
  list                 every user's skills, languages, capacity, teams and status (-json)
  set NAME [flags]     change the flags given; the others keep their value
                       -skills "billing:7, returns:5" -languages en,de -capacity 5 -teams Billing,Orders

The same -data folder, or POSTROOM_DATABASE_URL, as "postroom serve".
`

var agentCommands = map[string]routingCommand{
	"list": {args: "[-json]", flags: jsonFlag, run: (*routingCLI).agentList},
	"set": {args: "NAME [flags]", minArgs: 1, maxArgs: 1, run: (*routingCLI).agentSet, flags: func(fs *flag.FlagSet, o *routingFlags) {
		fs.StringVar(&o.skills, "skills", "", `skills with levels 1 to 10, e.g. "billing:7, returns:5" (empty: none)`)
		fs.StringVar(&o.languages, "languages", "", "ISO 639-1 codes, e.g. en,de (empty: none)")
		fs.IntVar(&o.capacity, "capacity", 0, "email items at once, 1 to 100")
		fs.StringVar(&o.teams, "teams", "", "team names, comma-separated (empty: none)")
	}},
}

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return runRoutingGroup(ctx, "agent", agentUsage, agentCommands, args, stdout, stderr, getenv)
}

func (c *routingCLI) agentList(ctx context.Context, _ []string) error {
	agents, err := c.st.ListAgents(ctx)
	if err != nil {
		return err
	}
	n, err := c.names(ctx)
	if err != nil {
		return err
	}
	if c.o.json {
		type row struct {
			Username  string         `json:"username"`
			Skills    map[string]int `json:"skills"`
			Languages []string       `json:"languages"`
			Capacity  int            `json:"capacity"`
			Teams     []string       `json:"teams"`
			Status    string         `json:"status"`
		}
		out := []row{}
		for _, a := range agents {
			out = append(out, row{a.Username, a.Skills, a.Languages, a.Capacity, n.teamNames(a.Teams), a.Status})
		}
		return c.printJSON(out)
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "USER\tSKILLS\tLANGUAGES\tCAPACITY\tTEAMS\tSTATUS")
	for _, a := range agents {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", a.Username, dash(routing.FormatSkills(a.Skills)),
			dash(strings.Join(a.Languages, ",")), a.Capacity, dash(strings.Join(n.teamNames(a.Teams), ",")), a.Status)
	}
	return w.Flush()
}

func (c *routingCLI) agentSet(ctx context.Context, pos []string) error {
	u, err := c.st.UserByUsername(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("no user %q: see postroom user list", pos[0])
	}
	a, err := c.st.Agent(ctx, u.ID)
	if err != nil {
		return err
	}
	p := routing.ProfileOf(a)
	if c.o.set["skills"] {
		skills, msg := routing.ParseSkills(c.o.skills)
		if msg != "" {
			return fmt.Errorf("-skills: %s", msg)
		}
		p.Skills = skills
	}
	if c.o.set["languages"] {
		p.Languages = routing.ParseLanguages(c.o.languages)
	}
	if c.o.set["capacity"] {
		p.Capacity = c.o.capacity
	}
	if _, err := routing.SaveProfile(ctx, c.st, c.actor, u.ID, p); err != nil {
		var ve *routing.ValidationError
		if errors.As(err, &ve) {
			var parts []string
			for f, m := range ve.Fields {
				parts = append(parts, "-"+f+": "+m)
			}
			return errors.New(strings.Join(parts, "; "))
		}
		return err
	}
	if c.o.set["teams"] {
		n, err := c.names(ctx)
		if err != nil {
			return err
		}
		ids, err := n.teamIDs(splitNames(c.o.teams))
		if err != nil {
			return err
		}
		if err := c.st.SetUserTeams(ctx, u.ID, ids); err != nil {
			return err
		}
		c.audit(ctx, "user.teams", fmt.Sprintf("user:%d", u.ID), "", c.o.teams)
	}
	fmt.Fprintf(c.out, "agent %s saved\n", u.Username)
	return nil
}
