package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/postroom/postroom/internal/routing"
)

func TestRuleTestEndpoint(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	sam := f.signedIn(t, "sam")
	msg := f.items["plain.eml"].MessageID

	// An unsaved rule: each condition with what it saw, and the actions that would apply.
	body := fmt.Sprintf(`{"message_id": %d, "rule": {"name": "Orders", "match": "all", "conditions": [
		{"field": "subject", "op": "regex", "value": "order \\d+"},
		{"field": "sender", "op": "ends_with", "value": "@example.org"}],
		"actions": {"category": "orders", "skills": {"orders": 3}}}}`, msg)
	resp := sam.postJSON("/api/v1/rules/test", body)
	if resp.status != http.StatusOK {
		t.Fatalf("test: %d %s", resp.status, resp.body)
	}
	var res routing.RuleTest
	if err := json.Unmarshal(resp.body, &res); err != nil {
		t.Fatal(err)
	}
	if res.MessageID != msg || res.Mailbox != "support" || len(res.Rules) != 1 {
		t.Fatalf("result: %+v", res)
	}
	tr := res.Rules[0]
	if tr.Matched || tr.Applied || len(tr.Conditions) != 2 || !tr.Conditions[0].Matched || tr.Conditions[0].Seen != "Order 1234 has not arrived" ||
		tr.Conditions[1].Matched || tr.Conditions[1].Seen != "carla@example.net" || res.Actions.Category != "" {
		t.Errorf("trace: %+v, actions %+v", tr, res.Actions)
	}
	// "any": applies, with its actions; a disabled rule is tested as if enabled.
	resp = sam.postJSON("/api/v1/rules/test", fmt.Sprintf(`{"message_id": %d, "rule": {"name": "Orders", "enabled": false, "match": "any", "conditions": [
		{"field": "subject", "op": "contains", "value": "order"}], "actions": {"category": "orders"}}}`, msg))
	if err := json.Unmarshal(resp.body, &res); err != nil || !res.Rules[0].Applied || res.Actions.Category != "orders" {
		t.Errorf("any: %d %s", resp.status, resp.body)
	}

	// An invalid rule: field errors under "rule."; unknown message: field error.
	resp = sam.postJSON("/api/v1/rules/test", fmt.Sprintf(`{"message_id": %d, "rule": {"name": "x", "conditions": [{"field": "subject", "op": "regex", "value": "("}]}}`, msg))
	if resp.status != http.StatusBadRequest || resp.json(t)["fields"].(map[string]any)["rule.conditions[0].value"] == nil {
		t.Errorf("invalid regex: %d %s", resp.status, resp.body)
	}
	resp = sam.postJSON("/api/v1/rules/test", `{"message_id": 99999}`)
	if resp.status != http.StatusBadRequest || resp.json(t)["fields"].(map[string]any)["message_id"] == nil {
		t.Errorf("unknown message: %d %s", resp.status, resp.body)
	}
	if resp := sam.postJSON("/api/v1/rules/test", `{}`); resp.status != http.StatusBadRequest {
		t.Errorf("no message: %d %s", resp.status, resp.body)
	}

	// Without a rule: the saved rules, in order.
	for _, r := range []string{
		`{"name": "Spam", "enabled": true, "position": 10, "conditions": [{"field": "subject", "op": "contains", "value": "viagra"}], "actions": {"close": "spam"}}`,
		`{"name": "Orders", "enabled": true, "position": 20, "conditions": [{"field": "body", "op": "contains", "value": "order 1234"}], "actions": {"tags": ["order"]}}`,
	} {
		if resp := admin.postJSON("/api/v1/rules", r); resp.status != http.StatusCreated {
			t.Fatalf("save rule: %d %s", resp.status, resp.body)
		}
	}
	resp = sam.postJSON("/api/v1/rules/test", fmt.Sprintf(`{"work_item_id": %d}`, f.items["plain.eml"].WorkItemID))
	if err := json.Unmarshal(resp.body, &res); err != nil || resp.status != 200 {
		t.Fatalf("saved rules: %d %s", resp.status, resp.body)
	}
	if len(res.Rules) != 2 || res.Rules[0].Name != "Spam" || res.Rules[0].Matched || !res.Rules[1].Applied ||
		len(res.Actions.Tags) != 1 || res.Actions.Tags[0] != "order" || len(res.Applied) != 1 {
		t.Errorf("saved rules: %+v", res)
	}
	// Agents may not.
	if resp := f.signedIn(t, "ana").postJSON("/api/v1/rules/test", `{"message_id": 1}`); resp.status != http.StatusForbidden {
		t.Errorf("agent: %d", resp.status)
	}
}

func TestDeleteRoutingObjectOfItsKind(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	resp := admin.postJSON("/api/v1/rules", `{"name": "Keep me", "enabled": true}`)
	if resp.status != http.StatusCreated {
		t.Fatalf("create rule: %d %s", resp.status, resp.body)
	}
	id := int64(resp.json(t)["id"].(float64))
	if resp := admin.do("DELETE", fmt.Sprintf("/api/v1/calendars/%d", id), "application/json", ""); resp.status != http.StatusNotFound {
		t.Errorf("delete a rule as a calendar: %d %s", resp.status, resp.body)
	}
	if resp := admin.do("DELETE", fmt.Sprintf("/api/v1/rules/%d", id), "application/json", ""); resp.status != http.StatusNoContent {
		t.Errorf("delete the rule: %d %s", resp.status, resp.body)
	}
}
