package bench

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// benchRules returns n classification rules of the kinds a contact center writes: subject
// and body words, regular expressions, sender domains, headers and recipients, and one on
// automatic mail; with language, the second is on the detected language, which makes every
// message go through language detection. The benchmark's messages match none of them, so
// that every rule is evaluated for every message (the slowest case).
func benchRules(n int, language bool) []routing.Rule {
	rules := make([]routing.Rule, 0, n)
	for i := range n {
		r := routing.Rule{Name: fmt.Sprintf("bench rule %02d", i), Enabled: true, Position: i + 1,
			Actions: routing.Actions{Category: fmt.Sprintf("category-%d", i), Tags: []string{fmt.Sprintf("t%d", i)}}}
		switch {
		case i == 0:
			r.Conditions = []routing.Condition{{Field: "automatic", Op: "is", Value: "true"}}
			r.Actions = routing.Actions{Close: "automatic"}
		case i == 1 && language:
			r.Conditions = []routing.Condition{{Field: "language", Op: "equals", Value: "de"}}
			r.Actions.Language = "de"
		case i%5 == 0:
			r.Conditions = []routing.Condition{{Field: "subject", Op: "contains", Value: fmt.Sprintf("campaign-%d", i)}}
		case i%5 == 1:
			r.Conditions = []routing.Condition{{Field: "body", Op: "regex", Value: fmt.Sprintf(`\border[- ]?ref[- ]?%d\b`, i)}}
		case i%5 == 2:
			r.Conditions = []routing.Condition{{Field: "sender_domain", Op: "equals", Value: fmt.Sprintf("partner%d.example", i)}}
		case i%5 == 3:
			r.Conditions = []routing.Condition{{Field: "header", Op: "present", Header: fmt.Sprintf("X-Campaign-%d", i)}}
		default:
			r.Match = "any"
			r.Conditions = []routing.Condition{
				{Field: "recipients", Op: "contains", Value: fmt.Sprintf("team%d@example.com", i)},
				{Field: "subject", Op: "regex", Value: fmt.Sprintf(`^\[ticket-%d\]`, i)},
			}
		}
		rules = append(rules, r)
	}
	return rules
}

// addBenchRules saves n rules and has the App's routing take them at once.
func addBenchRules(ctx context.Context, a *app.App, n int, language bool) error {
	rules := benchRules(n, language)
	if err := routing.ValidateRules(rules); err != nil {
		return fmt.Errorf("bench rules: %w", err)
	}
	for _, r := range rules {
		spec, _ := json.Marshal(r)
		if _, err := a.Store.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindRule, Name: r.Name, Position: r.Position, Spec: spec}); err != nil {
			return fmt.Errorf("save bench rule: %w", err)
		}
	}
	return a.Routing.Load(ctx)
}
