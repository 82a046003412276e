package workitem

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/postroom/postroom/internal/store"
)

// The collision guard: an agent's reply carries the newest message of the conversation
// the agent had on screen (SeenMessageID), and a reply to a conversation that has moved
// on since, through a customer's new message or a colleague's reply, is refused until
// the agent has seen what changed or confirms. Notes and state changes do not count:
// they change nothing the customer reads.

// LatestMessageID is the newest message of a conversation in storage order (ids grow as
// messages are stored): what a reply form carries as the message its agent saw. It is 0
// for no messages.
func LatestMessageID(msgs []store.Message) int64 {
	var id int64
	for _, m := range msgs {
		id = max(id, m.ID)
	}
	return id
}

// ErrUnknownSeenMessage means the message a reply says its agent saw is not part of the
// conversation.
var ErrUnknownSeenMessage = errors.New("seen_message_id is not a message of this conversation: reload the work item and send the reply again")

// ConversationChangedError is a reply refused because the conversation changed after its
// agent loaded it: New are the messages stored since, in the conversation's order.
type ConversationChangedError struct {
	New []store.Message
}

func (e *ConversationChangedError) Error() string {
	var customer, ours int
	var authors []string
	for _, m := range e.New {
		if m.Direction == store.Outbound {
			ours++
			if name := authorOf(m); !slices.Contains(authors, name) {
				authors = append(authors, name)
			}
		} else {
			customer++
		}
	}
	var parts []string
	if customer > 0 {
		parts = append(parts, plural(customer, "new message from the customer", "new messages from the customer"))
	}
	if ours > 0 {
		parts = append(parts, plural(ours, "reply", "replies")+" sent by "+strings.Join(authors, ", "))
	}
	return "the conversation changed since you opened it (" + strings.Join(parts, " and ") +
		"): read what changed, then send anyway or change your reply"
}

// authorOf names who wrote an outbound message: its agent, or postroom for an automatic
// message.
func authorOf(m store.Message) string {
	switch {
	case m.AuthorName != "":
		return m.AuthorName
	case m.Automatic != "" || m.AuthorID == 0:
		return "postroom (automatic)"
	default:
		return "a colleague"
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// CheckSeen applies the collision guard to a reply whose agent saw the conversation msgs
// up to the message seenID: nil when nothing was stored after it, a
// *ConversationChangedError listing what was, ErrUnknownSeenMessage when seenID is not a
// message of msgs. A seenID of 0 (the reply did not say what its agent saw) or confirm
// (the agent saw the change and sends anyway) pass.
func CheckSeen(msgs []store.Message, seenID int64, confirm bool) error {
	if seenID == 0 || confirm {
		return nil
	}
	found := false
	var newer []store.Message
	for _, m := range msgs {
		switch {
		case m.ID == seenID:
			found = true
		case m.ID > seenID:
			newer = append(newer, m)
		}
	}
	if !found {
		return ErrUnknownSeenMessage
	}
	if len(newer) > 0 {
		return &ConversationChangedError{New: newer}
	}
	return nil
}
