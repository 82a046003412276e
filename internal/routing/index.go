package routing

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// index holds the queued items in memory, by queue and class. A class is the items of a
// queue with the same schema, priority adjustment, requirements and overflow: within a
// class the priority never falls with age (schemas are non-decreasing), so the oldest
// item is the best, and the head of each class is all a choice needs to look at.
type index struct {
	queues map[int64]map[string]*class
	byID   map[int64]*entry
	// reserved are items being assigned right now (out of the index until the store
	// answers).
	reserved map[int64]bool
}

type entry struct {
	it    store.RoutingItem
	class *class
}

type class struct {
	key   string
	items []store.RoutingItem // oldest first (QueuedAt, then id)
}

func newIndex() *index {
	return &index{queues: map[int64]map[string]*class{}, byID: map[int64]*entry{}, reserved: map[int64]bool{}}
}

// classKey groups items that order the same way within a queue.
func classKey(it store.RoutingItem) string {
	b, _ := json.Marshal(struct {
		S int64
		A int
		K map[string]int
		L string
		O bool
	}{it.SchemaID, it.PriorityAdjust, it.Skills, it.Language, it.Overflowed})
	return string(b)
}

func older(a, b store.RoutingItem) int {
	if c := a.QueuedAt.Compare(b.QueuedAt); c != 0 {
		return c
	}
	switch {
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// put adds or replaces a queued item.
func (x *index) put(it store.RoutingItem) {
	x.remove(it.ID)
	if it.QueueID == 0 {
		return
	}
	classes := x.queues[it.QueueID]
	if classes == nil {
		classes = map[string]*class{}
		x.queues[it.QueueID] = classes
	}
	k := classKey(it)
	c := classes[k]
	if c == nil {
		c = &class{key: k}
		classes[k] = c
	}
	i, _ := slices.BinarySearchFunc(c.items, it, older)
	c.items = slices.Insert(c.items, i, it)
	x.byID[it.ID] = &entry{it: it, class: c}
}

// remove drops an item (no-op when absent).
func (x *index) remove(id int64) {
	e := x.byID[id]
	if e == nil {
		return
	}
	delete(x.byID, id)
	c := e.class
	if i, ok := slices.BinarySearchFunc(c.items, e.it, older); ok {
		c.items = slices.Delete(c.items, i, i+1)
	}
	if len(c.items) == 0 {
		q := x.queues[e.it.QueueID]
		delete(q, c.key)
		if len(q) == 0 {
			delete(x.queues, e.it.QueueID)
		}
	}
}

// depth counts a queue's queued items.
func (x *index) depth(queueID int64) int {
	n := 0
	for _, c := range x.queues[queueID] {
		n += len(c.items)
	}
	return n
}

// oldestWaiting returns the oldest QueuedAt of a queue (zero when empty).
func (x *index) oldestWaiting(queueID int64) time.Time {
	var t time.Time
	for _, c := range x.queues[queueID] {
		if len(c.items) > 0 && (t.IsZero() || c.items[0].QueuedAt.Before(t)) {
			t = c.items[0].QueuedAt
		}
	}
	return t
}
