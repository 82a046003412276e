package routing

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// An agent's routing profile: the skills (with a level) and languages the assignment
// matches against a work item's requirements, and the capacity, how many email items the
// agent works on at once. The web pages, the API and the routing engine share these rules.

// Bounds of an agent profile.
const (
	MaxSkillNameLen = 40
	MinSkillLevel   = 1
	MaxSkillLevel   = 10
	MinCapacity     = 1
	MaxCapacity     = 100
	MaxSkills       = 100
	MaxLanguages    = 50
)

// Agent statuses (the store's values).
const (
	StatusAvailable = store.AgentAvailable
	StatusAway      = store.AgentAway
	StatusOffline   = store.AgentOffline
)

// Statuses lists the agent statuses in the order people pick them.
var Statuses = []string{StatusAvailable, StatusAway, StatusOffline}

// AgentProfile is what a supervisor sets of an agent.
type AgentProfile struct {
	Skills    map[string]int `json:"skills"`
	Languages []string       `json:"languages"`
	Capacity  int            `json:"capacity"`
}

// ProfileOf returns the profile of a stored agent.
func ProfileOf(a store.Agent) AgentProfile {
	p := AgentProfile{Skills: a.Skills, Languages: a.Languages, Capacity: a.Capacity}
	if p.Skills == nil {
		p.Skills = map[string]int{}
	}
	if p.Languages == nil {
		p.Languages = []string{}
	}
	return p
}

// validSkillName reports whether name is 1..MaxSkillNameLen of a-z, 0-9, - and _.
func validSkillName(name string) bool {
	if name == "" || len(name) > MaxSkillNameLen {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validLanguage reports whether code is an ISO 639-1 code in form: two lowercase letters.
func validLanguage(code string) bool {
	return len(code) == 2 && code[0] >= 'a' && code[0] <= 'z' && code[1] >= 'a' && code[1] <= 'z'
}

// Validate checks the profile. Field keys: skills, skills.<name>, languages,
// languages[i], capacity.
func (p AgentProfile) Validate() error {
	errs := &ValidationError{What: "the agent profile"}
	if len(p.Skills) > MaxSkills {
		errs.Add("skills", fmt.Sprintf("give at most %d skills", MaxSkills))
	}
	names := make([]string, 0, len(p.Skills))
	for name := range p.Skills {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !validSkillName(name) {
			errs.Add("skills", fmt.Sprintf("skill %q: name it with 1 to %d of the lowercase letters a-z, digits, - and _, like billing or returns-eu", name, MaxSkillNameLen))
			continue
		}
		if lv := p.Skills[name]; lv < MinSkillLevel || lv > MaxSkillLevel {
			errs.Add("skills."+name, fmt.Sprintf("skill %s has level %d: give a whole number from %d (beginner) to %d (expert)", name, lv, MinSkillLevel, MaxSkillLevel))
		}
	}
	if len(p.Languages) > MaxLanguages {
		errs.Add("languages", fmt.Sprintf("give at most %d languages", MaxLanguages))
	}
	for i, l := range p.Languages {
		if !validLanguage(l) {
			errs.Add("languages", fmt.Sprintf("%q is not a language code: use ISO 639-1 codes of two lowercase letters, like en, de, fr", l))
		} else if slices.Index(p.Languages, l) != i {
			errs.Add("languages", fmt.Sprintf("%s is given twice: give each language once", l))
		}
	}
	if p.Capacity < MinCapacity || p.Capacity > MaxCapacity {
		errs.Add("capacity", fmt.Sprintf("%d is out of range: enter how many email items the agent works on at once, a whole number from %d to %d (5 is usual)", p.Capacity, MinCapacity, MaxCapacity))
	}
	return errs.OrNil()
}

// ValidateStatus checks an agent status (field "status").
func ValidateStatus(status string) error {
	if slices.Contains(Statuses, status) {
		return nil
	}
	errs := &ValidationError{What: "the agent status"}
	errs.Add("status", fmt.Sprintf("%q is not a status: use available, away or offline", status))
	return errs
}

// FormatSkills writes skills as the text field shows them: "billing:7, returns:5", by name.
func FormatSkills(skills map[string]int) string {
	names := make([]string, 0, len(skills))
	for n := range skills {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, n+":"+strconv.Itoa(skills[n]))
	}
	return strings.Join(parts, ", ")
}

// ParseSkills reads "billing:7, returns:5" (commas or spaces between; a skill without a
// level gets 5). It returns the field message on a malformed entry; names and levels are
// then checked by Validate.
func ParseSkills(s string) (map[string]int, string) {
	out := map[string]int{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		name, level, hasLevel := strings.Cut(part, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		lv := 5
		if hasLevel {
			n, err := strconv.Atoi(strings.TrimSpace(level))
			if err != nil {
				return nil, fmt.Sprintf("%q: write each skill as name:level, like billing:7, returns:5", part)
			}
			lv = n
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Sprintf("skill %s is given twice: give each skill once", name)
		}
		out[name] = lv
	}
	return out, ""
}

// ParseLanguages reads "en, de" (commas or spaces between), lowercased.
func ParseLanguages(s string) []string {
	out := []string{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' }) {
		out = append(out, strings.ToLower(part))
	}
	return out
}

// AgentStore is what changing an agent's profile and status needs of the store.
type AgentStore interface {
	Agent(ctx context.Context, userID int64) (store.Agent, error)
	SaveAgent(ctx context.Context, a store.Agent) error
	SetAgentStatus(ctx context.Context, userID int64, status string, at time.Time) error
	AddAudit(ctx context.Context, e store.AuditEvent) error
}

// SaveProfile validates p and saves it as the profile of user userID (store.ErrNotFound
// when there is no such user), recording "agent.update" in the audit log by actor. It
// returns the saved agent.
func SaveProfile(ctx context.Context, st AgentStore, actor string, userID int64, p AgentProfile) (store.Agent, error) {
	old, err := st.Agent(ctx, userID)
	if err != nil {
		return store.Agent{}, fmt.Errorf("agent %d: %w", userID, err)
	}
	if err := p.Validate(); err != nil {
		return store.Agent{}, err
	}
	a := old
	a.Skills, a.Languages, a.Capacity = p.Skills, p.Languages, p.Capacity
	if err := st.SaveAgent(ctx, a); err != nil {
		return store.Agent{}, fmt.Errorf("save agent %s: %w", old.Username, err)
	}
	if d0, d1 := describeProfile(ProfileOf(old)), describeProfile(p); d0 != d1 {
		if err := st.AddAudit(ctx, store.AuditEvent{Actor: actor, Action: "agent.update",
			Object: fmt.Sprintf("user:%d", userID), Old: d0, New: d1}); err != nil {
			return store.Agent{}, fmt.Errorf("audit agent %s: %w", old.Username, err)
		}
	}
	return st.Agent(ctx, userID)
}

// SetStatus validates status and sets it as the status of user userID at at; it returns the
// agent.
func SetStatus(ctx context.Context, st AgentStore, userID int64, status string, at time.Time) (store.Agent, error) {
	if err := ValidateStatus(status); err != nil {
		return store.Agent{}, err
	}
	if _, err := st.Agent(ctx, userID); err != nil {
		return store.Agent{}, fmt.Errorf("agent %d: %w", userID, err)
	}
	if err := st.SetAgentStatus(ctx, userID, status, at); err != nil {
		return store.Agent{}, err
	}
	return st.Agent(ctx, userID)
}

func describeProfile(p AgentProfile) string {
	return fmt.Sprintf("skills=%q languages=%q capacity=%d", FormatSkills(p.Skills), strings.Join(p.Languages, ","), p.Capacity)
}
