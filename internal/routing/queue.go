package routing

import (
	"fmt"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// Defaults of a queue's routing settings.
const (
	DefaultOfferTimeout = 120 * time.Second
	// DefaultPreferredWait is how long a customer's reply waits for the agent who answered
	// the conversation last: until their next sign-in, at most a week.
	DefaultPreferredWait = 7 * 24 * time.Hour
	// MaxDeclines is how many declines flag an item for a supervisor.
	MaxDeclines = 3
)

// QueueSettings are a queue's routing settings (stored as the queue's spec).
type QueueSettings struct {
	// CalendarID is the business calendar for SLA and age arithmetic (0: 24x7).
	CalendarID int64 `json:"calendar_id"`
	// SchemaID is the default prioritisation schema (0: DefaultSchema).
	SchemaID int64 `json:"schema_id"`
	// SLAPolicyID is the default SLA policy (0: none).
	SLAPolicyID int64 `json:"sla_policy_id"`
	// Agents and Teams serve the queue; a queue that names neither is served by every agent.
	Agents []int64 `json:"agents"`
	Teams  []int64 `json:"teams"`
	// MaxDepth is the back-pressure limit: with this many items waiting, new items are
	// overflowed at once (0: no limit).
	MaxDepth int `json:"max_depth"`
	// Timed overflow: an item unassigned for OverflowAfterS is also offered to
	// OverflowTeams and the agents of OverflowQueueID, with its priority raised by
	// OverflowBoost (the seeds' E-mail Server strategy).
	OverflowAfterS  int64   `json:"overflow_after_s"`
	OverflowTeams   []int64 `json:"overflow_teams"`
	OverflowQueueID int64   `json:"overflow_queue_id"`
	OverflowBoost   int     `json:"overflow_boost"`
	// OfferTimeoutS is how long an agent has to accept an offer (0: 120 s).
	OfferTimeoutS int64 `json:"offer_timeout_s"`
	// Relax are the skill relaxation rings: after AfterS unassigned, required levels drop.
	Relax []RelaxStep `json:"relax"`
	// PreferredWaitS is how long a customer's reply waits for the agent who answered last
	// (0: a week).
	PreferredWaitS int64 `json:"preferred_wait_s"`
	// ReturnAfterS returns the assigned items of an agent who has been away or offline
	// this long to the queue (0: they stay).
	ReturnAfterS int64 `json:"return_after_s"`
	// RetentionDays, when not 0, deletes or anonymises (RetentionMode: store.RetentionDelete
	// or store.RetentionAnonymise) the queue's conversations this many days after they are
	// done (internal/privacy applies it).
	RetentionDays int    `json:"retention_days"`
	RetentionMode string `json:"retention_mode"`
}

// MaxRetentionDays bounds a queue's retention period (100 years).
const MaxRetentionDays = 36500

// RelaxStep is one ring of skill relaxation: after AfterS unassigned, every required
// level drops by DropLevels (to at least 1), and with DropSkills the skills are no longer
// required at all.
type RelaxStep struct {
	AfterS     int64 `json:"after_s"`
	DropLevels int   `json:"drop_levels"`
	DropSkills bool  `json:"drop_skills"`
}

// OfferTimeout returns the queue's offer timeout.
func (q QueueSettings) OfferTimeout() time.Duration {
	if q.OfferTimeoutS <= 0 {
		return DefaultOfferTimeout
	}
	return time.Duration(q.OfferTimeoutS) * time.Second
}

// PreferredWait returns how long a reply waits for the previous agent.
func (q QueueSettings) PreferredWait() time.Duration {
	if q.PreferredWaitS <= 0 {
		return DefaultPreferredWait
	}
	return time.Duration(q.PreferredWaitS) * time.Second
}

// Validate checks the settings; the name is checked by the caller.
func (q QueueSettings) Validate() error {
	errs := &ValidationError{What: "the queue"}
	if q.MaxDepth < 0 || q.MaxDepth > 1_000_000 {
		errs.Add("max_depth", "enter how many items may wait before new ones overflow, 0 to 1000000 (0: no limit)")
	}
	if q.OverflowAfterS < 0 || q.OverflowAfterS > MaxAgeS {
		errs.Add("overflow_after_s", "enter the seconds unassigned before overflow, 0 (never) to one year")
	}
	if q.OverflowAfterS > 0 && len(q.OverflowTeams) == 0 && q.OverflowQueueID == 0 && q.OverflowBoost == 0 {
		errs.Add("overflow_after_s", "overflow needs somewhere to go: choose an overflow team or queue, or a priority boost")
	}
	if q.OverflowBoost < 0 || q.OverflowBoost > MaxPriority {
		errs.Add("overflow_boost", fmt.Sprintf("enter a priority boost from 0 to %d", MaxPriority))
	}
	if q.OfferTimeoutS != 0 && (q.OfferTimeoutS < 10 || q.OfferTimeoutS > 3600) {
		errs.Add("offer_timeout_s", "enter the seconds an agent has to accept an offer, 10 to 3600")
	}
	if q.PreferredWaitS < 0 || q.PreferredWaitS > 7*24*3600 {
		errs.Add("preferred_wait_s", "enter the seconds a reply waits for the previous agent, 0 (a week) to 604800 (a week)")
	}
	if q.ReturnAfterS < 0 || q.ReturnAfterS > MaxAgeS {
		errs.Add("return_after_s", "enter the seconds after which an absent agent's items return, 0 (never) to one year")
	}
	switch {
	case q.RetentionDays < 0 || q.RetentionDays > MaxRetentionDays:
		errs.Add("retention_days", fmt.Sprintf("enter the days after which done conversations are removed, 1 to %d, or 0 to keep them", MaxRetentionDays))
	case q.RetentionDays > 0 && q.RetentionMode != store.RetentionDelete && q.RetentionMode != store.RetentionAnonymise:
		errs.Add("retention_mode", `choose what happens to done conversations: "delete" or "anonymise"`)
	case q.RetentionDays == 0 && q.RetentionMode != "" && q.RetentionMode != store.RetentionDelete && q.RetentionMode != store.RetentionAnonymise:
		errs.Add("retention_mode", `choose "delete" or "anonymise", or leave it empty`)
	}
	var last int64
	for i, r := range q.Relax {
		f := fmt.Sprintf("relax[%d]", i)
		switch {
		case r.AfterS <= last:
			errs.Add(f+".after_s", fmt.Sprintf("enter seconds greater than the previous ring's %d", last))
		case r.AfterS > MaxAgeS:
			errs.Add(f+".after_s", "enter at most one year in seconds")
		}
		if r.DropLevels < 0 || r.DropLevels > 9 {
			errs.Add(f+".drop_levels", "enter how many levels the required skills drop, 0 to 9")
		}
		last = r.AfterS
	}
	return errs.OrNil()
}

// relaxed returns the required skills of an item unassigned for age, after relaxation.
func (q QueueSettings) relaxed(skills map[string]int, age time.Duration) map[string]int {
	if len(skills) == 0 || len(q.Relax) == 0 {
		return skills
	}
	drop := 0
	for _, r := range q.Relax {
		if age < time.Duration(r.AfterS)*time.Second {
			break
		}
		if r.DropSkills {
			return nil
		}
		drop = r.DropLevels
	}
	if drop == 0 {
		return skills
	}
	out := make(map[string]int, len(skills))
	for k, v := range skills {
		out[k] = max(1, v-drop)
	}
	return out
}
