package routing

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// BoardStore is what the supervisor's board needs of the store.
type BoardStore interface {
	QueueDepths(ctx context.Context, now time.Time) ([]store.QueueDepth, error)
	ListQueues(ctx context.Context) ([]store.Queue, error)
	ListAgents(ctx context.Context) ([]store.Agent, error)
	AgentLoads(ctx context.Context) (map[int64]int, error)
}

// BoardQueue is one queue on the board.
type BoardQueue struct {
	ID         int64          `json:"id"`
	Name       string         `json:"name"`
	Enabled    bool           `json:"enabled"`
	Depth      int            `json:"depth"` // items waiting (queued or offered)
	ByState    map[string]int `json:"by_state"`
	OldestAgeS int64          `json:"oldest_age_s"`
	AtRisk     int            `json:"at_risk"`
	Breached   int            `json:"breached"`
	MaxDepth   int            `json:"max_depth,omitempty"`
}

// BoardAgent is one agent on the board.
type BoardAgent struct {
	UserID   int64    `json:"user_id"`
	Username string   `json:"username"`
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Status   string   `json:"status"`
	Load     int      `json:"load"`
	Capacity int      `json:"capacity"`
	Skills   []string `json:"skills"`
}

// Board is the supervisor's view at one moment.
type Board struct {
	At     time.Time    `json:"at"`
	Queues []BoardQueue `json:"queues"`
	Agents []BoardAgent `json:"agents"`
}

// LoadBoard computes the board at now: every queue's depth by state, oldest waiting age,
// items at risk and breached, and every enabled user's status, load and capacity.
func LoadBoard(ctx context.Context, st BoardStore, now time.Time) (Board, error) {
	b := Board{At: now, Queues: []BoardQueue{}, Agents: []BoardAgent{}}
	queues, err := st.ListQueues(ctx)
	if err != nil {
		return b, err
	}
	depths, err := st.QueueDepths(ctx, now)
	if err != nil {
		return b, err
	}
	byQueue := map[int64]store.QueueDepth{}
	for _, d := range depths {
		byQueue[d.QueueID] = d
	}
	for _, q := range queues {
		d := byQueue[q.ID]
		bq := BoardQueue{ID: q.ID, Name: q.Name, Enabled: q.Enabled, ByState: d.ByState, AtRisk: d.AtRisk, Breached: d.Breached}
		if bq.ByState == nil {
			bq.ByState = map[string]int{}
		}
		bq.Depth = d.ByState[store.StateQueued] + d.ByState[store.StateOffered]
		var settings QueueSettings
		if len(q.Spec) > 0 && json.Unmarshal(q.Spec, &settings) == nil {
			bq.MaxDepth = settings.MaxDepth
		}
		if !d.OldestAt.IsZero() {
			bq.OldestAgeS = max(0, int64(now.Sub(d.OldestAt)/time.Second))
		}
		b.Queues = append(b.Queues, bq)
	}
	agents, err := st.ListAgents(ctx)
	if err != nil {
		return b, err
	}
	loads, err := st.AgentLoads(ctx)
	if err != nil {
		return b, err
	}
	for _, a := range agents {
		if a.Disabled {
			continue
		}
		skills := make([]string, 0, len(a.Skills))
		for s, l := range a.Skills {
			skills = append(skills, s+":"+strconv.Itoa(l))
		}
		slices.Sort(skills)
		name := a.DisplayName
		if strings.TrimSpace(name) == "" {
			name = a.Username
		}
		b.Agents = append(b.Agents, BoardAgent{UserID: a.UserID, Username: a.Username, Name: name, Role: a.Role,
			Status: a.Status, Load: loads[a.UserID], Capacity: a.Capacity, Skills: skills})
	}
	return b, nil
}

// ItemOf is the routing view of a work item.
func ItemOf(w store.WorkItem) store.RoutingItem {
	return store.RoutingItem{ID: w.ID, State: w.State, QueueID: w.QueueID, QueuedAt: w.QueuedAt, ReceivedAt: w.ReceivedAt,
		PriorityAdjust: w.PriorityAdjust, Skills: w.Skills, Language: w.Language, SchemaID: w.SchemaID,
		SLAPolicyID: w.SLAPolicyID, SLADueAt: w.SLADueAt, AssignedTo: w.AssignedTo, OfferedTo: w.OfferedTo,
		OfferExpiresAt: w.OfferExpiresAt, DeclinedBy: w.DeclinedBy, PreferredAgent: w.PreferredAgent,
		PreferredUntil: w.PreferredUntil, Overflowed: w.Overflowed, UpdatedAt: w.UpdatedAt}
}
