package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/automsg"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// demoAgent is one of the demo's agents.
type demoAgent struct {
	user, name string
	skills     map[string]int
	languages  []string
	capacity   int
	teams      []string
}

// demoAgents are the demo's agents, with different skills and languages, in two teams.
var demoAgents = []demoAgent{
	{"agent", "Alex Agent", map[string]int{"general": 5, "billing": 7, "orders": 6}, []string{"en", "fr"}, 5, []string{"Billing", "Orders"}},
	{"bea", "Bea Billing", map[string]int{"general": 4, "billing": 9}, []string{"en", "de"}, 3, []string{"Billing"}},
	{"chen", "Chen Orders", map[string]int{"general": 5, "orders": 8, "returns": 6}, []string{"en", "fr"}, 4, []string{"Orders"}},
	{"dana", "Dana Deutsch", map[string]int{"general": 6, "orders": 4}, []string{"de", "en"}, 5, []string{"Orders"}},
}

// seedRouting sets up the demo's workload distribution once: a supervisor, agents with
// skills and languages in two teams, a business calendar, prioritisation schemas, an SLA
// policy, classification rules and the Default queue's settings. The agents start offline
// (nobody has signed in), so the sample emails wait in the queue, ageing.
func seedRouting(ctx context.Context, a *app.App, password string) error {
	st := a.Store
	if objs, err := st.ListRoutingObjects(ctx, store.KindSLA); err != nil {
		return err
	} else if len(objs) > 0 {
		return nil // a kept data folder is seeded already
	}
	if _, err := a.Auth.EnsureSampleUser(ctx, "supervisor", "Sam Supervisor", store.RoleSupervisor, password); err != nil {
		return fmt.Errorf("create demo supervisor: %w", err)
	}
	teams := map[string]int64{}
	for _, name := range []string{"Billing", "Orders"} {
		t, err := st.CreateTeam(ctx, name)
		if err != nil {
			return fmt.Errorf("create demo team: %w", err)
		}
		teams[name] = t.ID
	}
	for _, d := range demoAgents {
		u, err := a.Auth.EnsureSampleUser(ctx, d.user, d.name, store.RoleAgent, password)
		if err != nil {
			return fmt.Errorf("create demo agent %s: %w", d.user, err)
		}
		var ids []int64
		for _, t := range d.teams {
			ids = append(ids, teams[t])
		}
		if err := st.SetUserTeams(ctx, u.ID, ids); err != nil {
			return err
		}
		if err := st.SaveAgent(ctx, store.Agent{UserID: u.ID, Skills: d.skills, Languages: d.languages, Capacity: d.capacity}); err != nil {
			return err
		}
	}
	save := func(kind string, position int, v interface{ Validate() error }, name string) (int64, error) {
		if err := v.Validate(); err != nil {
			return 0, fmt.Errorf("demo %s %q: %w", kind, name, err)
		}
		spec, _ := json.Marshal(v)
		o, err := st.SaveRoutingObject(ctx, store.RoutingObject{Kind: kind, Name: name, Position: position, Spec: spec})
		return o.ID, err
	}
	cal := routing.Calendar{Name: "Office hours", TimeZone: "Europe/Berlin", Hours: []routing.Hours{
		{Day: "mon", Start: "08:00", End: "18:00"}, {Day: "tue", Start: "08:00", End: "18:00"},
		{Day: "wed", Start: "08:00", End: "18:00"}, {Day: "thu", Start: "08:00", End: "18:00"},
		{Day: "fri", Start: "08:00", End: "17:00"}},
		Holidays: []routing.Holiday{{Date: "2026-12-25", Name: "Christmas Day"}, {Date: "2026-12-26", Name: "Boxing Day"}}}
	calID, err := save(store.KindCalendar, 0, cal, cal.Name)
	if err != nil {
		return err
	}
	std := routing.DefaultSchema()
	std.Name = "Standard"
	schemaID, err := save(store.KindSchema, 0, std, std.Name)
	if err != nil {
		return err
	}
	urgent := routing.Schema{Name: "Urgent", Start: 50, Points: []routing.Point{{AgeS: 600, Priority: 70}, {AgeS: 1800, Priority: 90}},
		SLAPointS: 3600, BreachStep: 30, BreachEveryS: 1800}
	urgentID, err := save(store.KindSchema, 0, urgent, urgent.Name)
	if err != nil {
		return err
	}
	sla := routing.SLAPolicy{Name: "Standard", FirstResponseS: 4 * 3600, NextResponseS: 8 * 3600, AtRiskPercent: 80}
	slaID, err := save(store.KindSLA, 0, sla, sla.Name)
	if err != nil {
		return err
	}
	// Billing questions go to the Billing queue, served by the Billing team; everything
	// else waits in Default, served by every agent.
	billing, err := st.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true})
	if err != nil {
		return fmt.Errorf("create demo queue: %w", err)
	}
	billingSettings := routing.QueueSettings{CalendarID: calID, SchemaID: schemaID, SLAPolicyID: slaID,
		Teams: []int64{teams["Billing"]}, OverflowAfterS: 1800, OverflowTeams: []int64{teams["Orders"]}, OverflowBoost: 20}
	if err := billingSettings.Validate(); err != nil {
		return fmt.Errorf("demo queue: %w", err)
	}
	bspec, _ := json.Marshal(billingSettings)
	if err := st.SetQueueSpec(ctx, billing.ID, billing.Name, bspec); err != nil {
		return err
	}
	rules := []routing.Rule{
		{Name: "Automatic mail is closed", Enabled: true, Conditions: []routing.Condition{{Field: "automatic", Op: "is", Value: "true"}},
			Actions: routing.Actions{Close: "automatic"}},
		{Name: "Billing questions need billing skills", Enabled: true, Match: "any", Continue: true,
			Conditions: []routing.Condition{{Field: "subject", Op: "regex", Value: `invoice|refund|payment|charge|billing`},
				{Field: "body", Op: "regex", Value: `invoice|refund|payment was declined|charged twice`}},
			Actions: routing.Actions{QueueID: billing.ID, Category: "billing", Skills: map[string]int{"billing": 5}, Tags: []string{"billing"}}},
		{Name: "Orders and deliveries", Enabled: true, Match: "any", Continue: true,
			Conditions: []routing.Condition{{Field: "subject", Op: "regex", Value: `order|deliver|arrived|colis|parcel|shipping`}},
			Actions:    routing.Actions{Category: "orders", Skills: map[string]int{"orders": 4}, Tags: []string{"orders"}}},
		{Name: "German mail to German speakers", Enabled: true, Continue: true,
			Conditions: []routing.Condition{{Field: "language", Op: "equals", Value: "de"}},
			Actions:    routing.Actions{Language: "de"}},
		{Name: "Urgent and cancellations first", Enabled: true, Match: "any",
			Conditions: []routing.Condition{{Field: "subject", Op: "regex", Value: `urgent|asap|cancel`}},
			Actions:    routing.Actions{SchemaID: urgentID, PriorityAdjust: 10, Tags: []string{"urgent"}}},
	}
	for i, r := range rules {
		if _, err := save(store.KindRule, i+1, r, r.Name); err != nil {
			return err
		}
	}
	q, err := st.EnsureDefaultQueue(ctx)
	if err != nil {
		return err
	}
	settings := routing.QueueSettings{CalendarID: calID, SchemaID: schemaID, SLAPolicyID: slaID, OverflowAfterS: 1800, OverflowBoost: 10,
		Relax: []routing.RelaxStep{{AfterS: 3600, DropLevels: 2}, {AfterS: 4 * 3600, DropSkills: true}}}
	if err := settings.Validate(); err != nil {
		return fmt.Errorf("demo queue: %w", err)
	}
	spec, _ := json.Marshal(settings)
	if err := st.SetQueueSpec(ctx, q.ID, q.Name, spec); err != nil {
		return err
	}
	// Both queues acknowledge a new conversation with the shipped texts (open hours,
	// closed hours, holiday), so that a newcomer sees one arrive in the customers' mailbox.
	for _, queueID := range []int64{q.ID, billing.ID} {
		for _, name := range automsg.QueueNames {
			text := automsg.Default(name)
			if err := st.SetAutoTemplate(ctx, store.AutoTemplate{QueueID: queueID, Name: name, Enabled: true, Subject: text.Subject, Body: text.Body}); err != nil {
				return fmt.Errorf("demo acknowledgement: %w", err)
			}
		}
	}
	if err := seedResponses(ctx, st, q.ID, billing.ID); err != nil {
		return err
	}
	return a.Routing.Load(ctx)
}
