package workitem

import (
	"errors"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

func TestCheckSeen(t *testing.T) {
	first := store.Message{ID: 10, Direction: store.Inbound}
	reply := store.Message{ID: 12, Direction: store.Outbound, AuthorID: 3, AuthorName: "Ana Agent"}
	again := store.Message{ID: 11, Direction: store.Inbound}
	conv := []store.Message{first, again, reply} // shown by date: not storage order

	if got := LatestMessageID(conv); got != 12 {
		t.Errorf("LatestMessageID = %d, want 12", got)
	}
	if got := LatestMessageID(nil); got != 0 {
		t.Errorf("LatestMessageID(nil) = %d", got)
	}
	if err := CheckSeen(conv, 12, false); err != nil {
		t.Errorf("saw the newest message: %v", err)
	}
	if err := CheckSeen(conv, 0, false); err != nil {
		t.Errorf("no seen id given: %v", err)
	}
	if err := CheckSeen(conv, 10, true); err != nil {
		t.Errorf("confirmed: %v", err)
	}
	if err := CheckSeen(conv, 99, false); !errors.Is(err, ErrUnknownSeenMessage) {
		t.Errorf("seen id of another conversation: %v", err)
	}

	err := CheckSeen(conv, 10, false)
	var ce *ConversationChangedError
	if !errors.As(err, &ce) {
		t.Fatalf("saw only the first message: %v, want ConversationChangedError", err)
	}
	if len(ce.New) != 2 || ce.New[0].ID != 11 || ce.New[1].ID != 12 {
		t.Errorf("new messages = %+v, want 11 and 12 in the conversation's order", ce.New)
	}
	want := "the conversation changed since you opened it (1 new message from the customer and 1 reply sent by Ana Agent): read what changed, then send anyway or change your reply"
	if err.Error() != want {
		t.Errorf("explanation = %q\nwant %q", err.Error(), want)
	}

	err = CheckSeen(conv, 11, false)
	if !errors.As(err, &ce) || len(ce.New) != 1 || ce.New[0].ID != 12 {
		t.Fatalf("saw up to 11: %v", err)
	}
	if want := "the conversation changed since you opened it (1 reply sent by Ana Agent): read what changed, then send anyway or change your reply"; err.Error() != want {
		t.Errorf("explanation = %q", err.Error())
	}
}
