package workitem

import (
	"context"
	"fmt"
	"net/mail"

	"github.com/postroom/postroom/internal/store"
)

// HistoryLimit is how many of a customer's other conversations the item shows.
const HistoryLimit = 20

// HistoryStore is what CustomerHistory reads.
type HistoryStore interface {
	Message(ctx context.Context, id int64) (store.Message, error)
	CustomerHistory(ctx context.Context, address string, exceptConversation int64, limit int) ([]store.HistoryItem, error)
}

// Customer is the address a work item's conversation is with: the sender of its latest
// inbound message, or, for a conversation we started that nobody answered yet, the
// first To address of our email. "" when there is none.
func Customer(ctx context.Context, st HistoryStore, wi store.WorkItem) (string, error) {
	m, err := st.Message(ctx, wi.MessageID)
	if err != nil {
		return "", fmt.Errorf("customer of work item %d: %w", wi.ID, err)
	}
	if m.Direction != store.Outbound {
		return m.FromAddr, nil
	}
	list, err := mail.ParseAddressList(m.To)
	if err != nil || len(list) == 0 {
		return "", nil
	}
	return list[0].Address, nil
}

// CustomerHistory lists the customer's other conversations beside a work item, newest
// activity first, at most HistoryLimit: those with a message from the customer's address
// and those we started to it.
func CustomerHistory(ctx context.Context, st HistoryStore, wi store.WorkItem) (string, []store.HistoryItem, error) {
	addr, err := Customer(ctx, st, wi)
	if err != nil || addr == "" {
		return addr, nil, err
	}
	list, err := st.CustomerHistory(ctx, addr, wi.ConversationID, HistoryLimit)
	if err != nil {
		return addr, nil, fmt.Errorf("history of %s: %w", addr, err)
	}
	return addr, list, nil
}
