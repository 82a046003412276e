package store

import (
	"context"
	"errors"
	"time"
)

// Work item states of the routing lifecycle (internal/workitem owns the transitions):
// new -> queued -> offered -> assigned -> pending | on_hold -> done | cancelled.
const (
	StateQueued    = "queued"    // waiting in its queue for an agent
	StateOffered   = "offered"   // offered to one agent, who may accept or decline
	StateAssigned  = "assigned"  // an agent works on it
	StatePending   = "pending"   // waiting for the customer; the SLA clock is paused
	StateOnHold    = "on_hold"   // parked by its agent or a supervisor
	StateDone      = "done"      // answered or closed
	StateCancelled = "cancelled" // withdrawn by a supervisor
)

// Agent statuses.
const (
	AgentAvailable = "available"
	AgentAway      = "away"
	AgentOffline   = "offline"
)

// Kinds of routing objects (RoutingObject.Kind).
const (
	KindCalendar = "calendar"
	KindSchema   = "schema"
	KindSLA      = "sla"
	KindRule     = "rule"
)

// ErrLastAdmin is returned when a change would leave no enabled admin.
var ErrLastAdmin = errors.New("the last enabled admin cannot be disabled, demoted or deleted: make another user an admin first")

// ErrStateChanged is returned by a conditional change whose work item is no longer in one
// of the expected states (another agent, node or timer got there first).
var ErrStateChanged = errors.New("the work item changed meanwhile")

// ErrCapacity is returned by a claim when the agent has no free capacity.
var ErrCapacity = errors.New("the agent has no free capacity")

// Team is a group of users that queues are served by.
type Team struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// Agent is the routing profile of a user: what they can do and whether they take work.
type Agent struct {
	UserID    int64
	Skills    map[string]int // skill name -> level 1..10
	Languages []string       // ISO 639-1
	Capacity  int            // email items in progress at once
	Status    string         // AgentAvailable, AgentAway, AgentOffline
	StatusAt  time.Time
	// LastSeenAt is the last request of the agent (for the idle timeout).
	LastSeenAt time.Time
	// LastAssignedAt is when the agent last got an item (longest idle goes first).
	LastAssignedAt time.Time
	UpdatedAt      time.Time
	// Filled when read: the user's fields and teams.
	Username    string
	DisplayName string
	Role        string
	Disabled    bool
	Teams       []int64
}

// RoutingObject is a routing configuration object stored as a JSON document: a calendar,
// a prioritisation schema, an SLA policy or a classification rule (internal/routing
// defines and validates the documents; the store keeps them).
type RoutingObject struct {
	ID        int64
	Kind      string
	Name      string
	Position  int // the order of rules
	Spec      []byte
	UpdatedAt time.Time
}

// Classification is what the classification rules decided for an inbound message: it
// travels in the InboundMessage and the store only writes it.
type Classification struct {
	QueueID        int64
	Category       string
	Tags           []string
	PriorityAdjust int
	Skills         map[string]int
	Language       string
	SchemaID       int64
	SLAPolicyID    int64
	// Close, when set, is why the item is done at once ("spam", "automatic").
	Close string
	// SLA clocks, computed by routing: FirstDue/FirstRisk for a new item, NextDue/NextRisk
	// for a conversation the customer writes in again.
	FirstDue, FirstRisk time.Time
	NextDue, NextRisk   time.Time
	// PreferredWait is how long a reopened item waits for the agent who answered it last.
	PreferredWait time.Duration
	// NoReopen keeps a pending or done item as it is (automatic mail in a conversation).
	NoReopen bool
	// RouteAutomatic routes automatic mail (Message.Automatic) that starts a conversation
	// like any other (a rule asked for it); without it such an item is recorded as done
	// (CloseAutomatic), so that nobody answers a program.
	RouteAutomatic bool
}

// RoutingItem is what the assignment engine keeps of a work item.
type RoutingItem struct {
	ID             int64
	State          string
	QueueID        int64
	QueuedAt       time.Time
	ReceivedAt     time.Time
	PriorityAdjust int
	Skills         map[string]int
	Language       string
	SchemaID       int64
	SLAPolicyID    int64
	SLADueAt       time.Time
	AssignedTo     int64
	OfferedTo      int64
	OfferExpiresAt time.Time
	DeclinedBy     []int64
	PreferredAgent int64
	PreferredUntil time.Time
	Overflowed     bool
	UpdatedAt      time.Time
}

// Event is one change of a work item: who, when, from, to, why.
type Event struct {
	ID         int64
	WorkItemID int64
	At         time.Time
	ActorID    int64  // 0: the system
	Actor      string // username or "system"
	Kind       string // "state", "offer", "decline", "transfer", "sla_at_risk", "sla_breach", ...
	From, To   string // states
	AgentID    int64
	QueueID    int64
	Reason     string
	// Trace is the decision trace (JSON) of an offer or assignment; written with the
	// event, read by Traces.
	Trace []byte
}

// Change is a conditional change of one work item, written with its event in one
// transaction: it applies only when the item's state is one of From (ErrStateChanged
// otherwise) and, when IfAgent is set, the item is assigned or offered to that agent.
type Change struct {
	WorkItemID int64
	From       []string
	IfAgent    int64
	To         string
	Event      Event
	// Fields to set; nil pointers leave the column alone.
	AssignedTo     *int64
	OfferedTo      *int64
	OfferExpiresAt *time.Time
	QueueID        *int64
	QueuedAt       *time.Time
	SLADueAt       *time.Time
	SLARiskAt      *time.Time
	SLARemaining   *time.Duration // stored while pending (the clock is paused)
	DeclinedBy     []int64        // replaces the list when not nil
	Flag           *string
	PreferredAgent *int64
	PreferredUntil *time.Time
	Overflowed     *bool
	PriorityAdjust *int
	Reason         *string
	// CapacityOf, when set, refuses the change with ErrCapacity unless the agent has fewer
	// than Capacity items offered or assigned (counted in the transaction).
	CapacityOf int64
	Capacity   int
	// Trace, when not empty, is kept with the change's event as its decision trace (JSON).
	Trace []byte
	// AgentAssigned records the agent's LastAssignedAt.
	AgentAssigned int64
}

// ChangeResult is the outcome of one Change of a batch.
type ChangeResult struct {
	Err error // nil, ErrStateChanged, ErrCapacity, or a store error
}

// Trace is a stored decision trace.
type Trace struct {
	ID         int64
	WorkItemID int64
	At         time.Time
	AgentID    int64
	JSON       []byte
}

// QueueDepth counts a queue's open work items by state, with SLA figures at a moment.
type QueueDepth struct {
	QueueID  int64
	ByState  map[string]int
	OldestAt time.Time // the oldest queued item's QueuedAt (zero when none)
	AtRisk   int       // open items past their at-risk instant, not yet breached
	Breached int       // open items past their SLA due instant
}

// HourStats are one hour's arrivals and first responses.
type HourStats struct {
	Hour        time.Time
	Arrivals    int
	Responded   int // first responses in the hour
	ResponseMet int // of those, within the SLA
}

// HistoryRow is one event of the CSV export, with its item's figures.
type HistoryRow struct {
	Event
	Subject         string
	QueueName       string
	ReceivedAt      time.Time
	FirstResponseAt time.Time
	FirstDueAt      time.Time
	DoneAt          time.Time
	AssignedAt      time.Time
}

// Routing holds teams, agents, routing objects, queue settings and the work items'
// routing state. Every work item change goes through ApplyChanges (one transaction per
// batch, each change with its event row and trace).
type Routing interface {
	// Teams.
	CreateTeam(ctx context.Context, name string) (Team, error)
	ListTeams(ctx context.Context) ([]Team, error)
	DeleteTeam(ctx context.Context, id int64) error
	// SetUserTeams replaces the teams of a user.
	SetUserTeams(ctx context.Context, userID int64, teamIDs []int64) error

	// Agents. Agent returns the profile of a user, a default one (capacity 5, offline)
	// when none was saved.
	Agent(ctx context.Context, userID int64) (Agent, error)
	ListAgents(ctx context.Context) ([]Agent, error)
	SaveAgent(ctx context.Context, a Agent) error
	SetAgentStatus(ctx context.Context, userID int64, status string, at time.Time) error
	TouchAgent(ctx context.Context, userID int64, at time.Time) error
	// AgentLoads counts the items offered or assigned to each agent.
	AgentLoads(ctx context.Context) (map[int64]int, error)
	// OfferCounts counts the offers waiting for an answer per agent.
	OfferCounts(ctx context.Context) (map[int64]int, error)

	// Routing objects of a kind, rules by Position.
	ListRoutingObjects(ctx context.Context, kind string) ([]RoutingObject, error)
	RoutingObject(ctx context.Context, id int64) (RoutingObject, error)
	// SaveRoutingObject, DeleteRoutingObject and SetQueueSpec write the audit events given
	// in the same transaction as the change, so that a change and its record commit
	// together (an event's Object is filled with the object when empty).
	SaveRoutingObject(ctx context.Context, o RoutingObject, audit ...AuditEvent) (RoutingObject, error)
	DeleteRoutingObject(ctx context.Context, id int64, audit ...AuditEvent) error
	// SetQueueSpec saves a queue's routing settings (JSON) and name.
	SetQueueSpec(ctx context.Context, id int64, name string, spec []byte, audit ...AuditEvent) error
	// RoutingVersion changes whenever a routing object, a queue or an agent profile
	// changes, so that caches know to reload.
	RoutingVersion(ctx context.Context) (string, error)

	// RoutingItems lists items for the engine: with since zero every queued or offered
	// item; otherwise every item updated at or after since, in any state.
	RoutingItems(ctx context.Context, since time.Time) ([]RoutingItem, error)
	RoutingItem(ctx context.Context, id int64) (RoutingItem, error)
	// ApplyChanges applies the changes in one transaction, each on its own terms: a
	// change refused (ErrStateChanged, ErrCapacity) does not stop the others.
	ApplyChanges(ctx context.Context, changes []Change) ([]ChangeResult, error)
	Events(ctx context.Context, workItemID int64) ([]Event, error)
	Traces(ctx context.Context, workItemID int64) ([]Trace, error)
	// ExpiredOffers lists items offered whose offer expired at now.
	ExpiredOffers(ctx context.Context, now time.Time) ([]RoutingItem, error)
	// QueueDepths counts open items per queue at now.
	QueueDepths(ctx context.Context, now time.Time) ([]QueueDepth, error)
	// HourlyStats are arrivals and first responses per hour from since.
	HourlyStats(ctx context.Context, since time.Time) ([]HourStats, error)
	// History lists the events between from and to (exclusive) with their items' figures.
	History(ctx context.Context, from, to time.Time) ([]HistoryRow, error)
	// AddEvent records an event that is not a state change (SLA at risk, breach).
	AddEvent(ctx context.Context, e Event) error
	// NoteSLA records, once per item and clock, an "sla_at_risk" event for each open item
	// whose at-risk instant has passed at now and an "sla_breach" event for each whose due
	// instant has, and returns the events written.
	NoteSLA(ctx context.Context, now time.Time) ([]Event, error)
}
