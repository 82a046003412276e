package workitem_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// TestWhoMayDoWhat walks the state machine: which action is allowed from which state, for
// the item's agent, another agent and a supervisor, with the reason when refused.
func TestWhoMayDoWhat(t *testing.T) {
	ana := store.User{ID: 1, Username: "ana", Role: store.RoleAgent}
	ben := store.User{ID: 2, Username: "ben", Role: store.RoleAgent}
	sue := store.User{ID: 3, Username: "sue", Role: store.RoleSupervisor}
	item := func(state string, assigned, offered int64) store.WorkItem {
		return store.WorkItem{ID: 9, State: state, AssignedTo: assigned, OfferedTo: offered}
	}
	tests := []struct {
		user   store.User
		item   store.WorkItem
		action workitem.Action
		refuse string // "" when allowed; else a word of the reason
	}{
		{ana, item(store.StateOffered, 0, 1), workitem.Accept, ""},
		{ana, item(store.StateOffered, 0, 1), workitem.Decline, ""},
		{ben, item(store.StateOffered, 0, 1), workitem.Accept, "offered to someone else"},
		{sue, item(store.StateOffered, 0, 1), workitem.Accept, "offered to someone else"},
		{ana, item(store.StateAssigned, 1, 0), workitem.Accept, "cannot accept a work item that is assigned"},
		{ana, item(store.StateAssigned, 1, 0), workitem.Pend, ""},
		{ana, item(store.StateAssigned, 1, 0), workitem.Hold, ""},
		{ana, item(store.StatePending, 1, 0), workitem.Resume, ""},
		{ana, item(store.StateAssigned, 1, 0), workitem.Close, ""},
		{ben, item(store.StateAssigned, 1, 0), workitem.Close, "only the agent it is assigned to or a supervisor"},
		{sue, item(store.StateAssigned, 1, 0), workitem.Close, ""},
		{ana, item(store.StateAssigned, 1, 0), workitem.Cancel, "only a supervisor"},
		{sue, item(store.StateAssigned, 1, 0), workitem.Cancel, ""},
		{sue, item(store.StateDone, 1, 0), workitem.Restart, ""},
		{ana, item(store.StateDone, 1, 0), workitem.Restart, "only a supervisor"},
		{sue, item(store.StateQueued, 0, 0), workitem.Restart, "cannot restart a work item that is queued"},
		{ana, item(store.StateDone, 1, 0), workitem.Reopen, ""},
		{ben, item(store.StateDone, 1, 0), workitem.Reopen, "only the agent it is assigned to or a supervisor"},
		{sue, item(store.StateDone, 0, 0), workitem.Reopen, ""},
		{ana, item(store.StateAssigned, 1, 0), workitem.Reopen, "cannot reopen a work item that is assigned"},
		{ana, item(store.StateAssigned, 1, 0), workitem.Release, ""},
		{ana, item(store.StateAssigned, 1, 0), workitem.Transfer, ""},
		{ana, item(store.StateQueued, 0, 0), workitem.Reply, ""}, // replying takes a queued item
		{ana, item(store.StateAssigned, 2, 0), workitem.Reply, "only the agent it is assigned to"},
		{sue, item(store.StateCancelled, 2, 0), workitem.Close, "cannot close a work item that is cancelled"},
	}
	for _, tt := range tests {
		err := workitem.Check(tt.user, tt.item, tt.action)
		switch {
		case tt.refuse == "" && err != nil:
			t.Errorf("%s %s on a %s item: refused: %v", tt.user.Username, tt.action, tt.item.State, err)
		case tt.refuse != "" && (err == nil || !errors.Is(err, workitem.ErrNotAllowed) || !strings.Contains(err.Error(), tt.refuse)):
			t.Errorf("%s %s on a %s item: %v, want refused with %q", tt.user.Username, tt.action, tt.item.State, err, tt.refuse)
		}
	}
	// The buttons a user sees are the actions they may take.
	got := workitem.Actions(ana, item(store.StateAssigned, 1, 0))
	want := []workitem.Action{workitem.Pend, workitem.Hold, workitem.Close, workitem.Release, workitem.Transfer}
	if !slices.Equal(got, want) {
		t.Errorf("ana's actions on her assigned item = %v, want %v", got, want)
	}
	if got := workitem.Actions(ben, item(store.StateAssigned, 1, 0)); len(got) != 0 {
		t.Errorf("ben's actions on ana's item = %v, want none", got)
	}
}

func TestStates(t *testing.T) {
	for _, s := range workitem.States {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	if workitem.State("replied").Valid() {
		t.Error("the old state replied is valid")
	}
	open := 0
	for _, s := range workitem.States {
		if s.Open() {
			open++
		}
	}
	if open != 5 || workitem.Done.Open() || workitem.New.Open() {
		t.Errorf("%d open states; done open %v, new open %v", open, workitem.Done.Open(), workitem.New.Open())
	}
}
