package routing

import (
	"errors"
	"strings"
	"testing"
)

func TestAgentProfileValidate(t *testing.T) {
	good := AgentProfile{Skills: map[string]int{"billing": 7, "returns-eu": 1, "vip_2": 10}, Languages: []string{"en", "de"}, Capacity: 5}
	if err := good.Validate(); err != nil {
		t.Fatalf("good profile: %v", err)
	}
	tests := []struct {
		name  string
		p     AgentProfile
		field string
		says  string
	}{
		{"capacity 0", AgentProfile{Capacity: 0}, "capacity", "from 1 to 100"},
		{"capacity 1000", AgentProfile{Capacity: 1000}, "capacity", "from 1 to 100"},
		{"level 0", AgentProfile{Skills: map[string]int{"billing": 0}, Capacity: 5}, "skills.billing", "from 1"},
		{"level 11", AgentProfile{Skills: map[string]int{"billing": 11}, Capacity: 5}, "skills.billing", "to 10"},
		{"uppercase skill", AgentProfile{Skills: map[string]int{"Billing": 3}, Capacity: 5}, "skills", "lowercase"},
		{"long skill", AgentProfile{Skills: map[string]int{strings.Repeat("a", 41): 3}, Capacity: 5}, "skills", "40"},
		{"empty skill", AgentProfile{Skills: map[string]int{"": 3}, Capacity: 5}, "skills", "lowercase"},
		{"language EN", AgentProfile{Languages: []string{"EN"}, Capacity: 5}, "languages", "ISO 639-1"},
		{"language eng", AgentProfile{Languages: []string{"eng"}, Capacity: 5}, "languages", "ISO 639-1"},
		{"language twice", AgentProfile{Languages: []string{"en", "en"}, Capacity: 5}, "languages", "twice"},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.Contains(ve.Fields[tc.field], tc.says) {
			t.Errorf("%s: %v, want field %s saying %q", tc.name, err, tc.field, tc.says)
		}
	}
}

func TestValidateStatus(t *testing.T) {
	for _, s := range []string{"available", "away", "offline"} {
		if err := ValidateStatus(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	var ve *ValidationError
	if err := ValidateStatus("busy"); !errors.As(err, &ve) || ve.Fields["status"] == "" {
		t.Errorf("busy: %v", err)
	}
}

func TestParseSkills(t *testing.T) {
	got, msg := ParseSkills("billing:7, Returns:5 vip")
	if msg != "" || len(got) != 3 || got["billing"] != 7 || got["returns"] != 5 || got["vip"] != 5 {
		t.Errorf("ParseSkills = %v %q", got, msg)
	}
	if FormatSkills(got) != "billing:7, returns:5, vip:5" {
		t.Errorf("FormatSkills = %q", FormatSkills(got))
	}
	if _, msg := ParseSkills("billing:high"); msg == "" {
		t.Error("billing:high accepted")
	}
	if _, msg := ParseSkills("billing:1, billing:2"); msg == "" {
		t.Error("a skill twice accepted")
	}
	if got, msg := ParseSkills("  "); msg != "" || len(got) != 0 {
		t.Errorf("empty: %v %q", got, msg)
	}
	if l := ParseLanguages("en, DE fr"); strings.Join(l, ",") != "en,de,fr" {
		t.Errorf("ParseLanguages = %v", l)
	}
}
