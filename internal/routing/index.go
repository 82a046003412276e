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
// item is the best. Each queue keeps its classes ordered by their head's priority, so a
// choice looks at the best classes first and stops as soon as the rest cannot win. The
// heads' priorities are recomputed when a head changes and on every tick (they age).
type index struct {
	queues map[int64]*qindex
	byID   map[int64]*entry
	// reserved are items being assigned right now (out of the index until the store
	// answers).
	reserved map[int64]bool
	// rank computes a head's candidate (nil when its queue is gone or disabled).
	rank func(it store.RoutingItem) *candidate
	// rankedAt is when every head was last recomputed.
	rankedAt time.Time
}

// headTTL is how long heads' priorities are trusted before they are recomputed (they
// change in steps of minutes; relaxation and overflow too).
const headTTL = time.Second

// fresh recomputes the heads when they are older than headTTL at now.
func (x *index) fresh(now time.Time) {
	if d := now.Sub(x.rankedAt); d >= headTTL || d < 0 {
		x.rerank()
		x.rankedAt = now
	}
}

type qindex struct {
	classes map[string]*class
	order   []*class // by head: best first; classes whose head has no candidate last
	depth   int
}

type entry struct {
	it    *store.RoutingItem
	class *class
}

type class struct {
	key   string
	q     *qindex
	items []*store.RoutingItem // oldest first (QueuedAt, then id)
	head  *candidate           // candidate of items[0]
}

func newIndex(rank func(store.RoutingItem) *candidate) *index {
	return &index{queues: map[int64]*qindex{}, byID: map[int64]*entry{}, reserved: map[int64]bool{}, rank: rank}
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

func older(a, b *store.RoutingItem) int {
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

// headBefore orders classes by their heads: best candidate first, none last.
func headBefore(a, b *class) int {
	switch {
	case a.head == nil && b.head == nil:
		return 0
	case a.head == nil:
		return 1
	case b.head == nil:
		return -1
	case better(a.head, b.head):
		return -1
	case better(b.head, a.head):
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
	q := x.queues[it.QueueID]
	if q == nil {
		q = &qindex{classes: map[string]*class{}}
		x.queues[it.QueueID] = q
	}
	k := classKey(it)
	c := q.classes[k]
	if c == nil {
		c = &class{key: k, q: q}
		q.classes[k] = c
	}
	p := &it
	i, _ := slices.BinarySearchFunc(c.items, p, older)
	c.items = slices.Insert(c.items, i, p)
	q.depth++
	x.byID[it.ID] = &entry{it: p, class: c}
	if i == 0 {
		x.reHead(c)
	}
}

// remove drops an item (no-op when absent).
func (x *index) remove(id int64) {
	e := x.byID[id]
	if e == nil {
		return
	}
	delete(x.byID, id)
	c := e.class
	i, ok := slices.BinarySearchFunc(c.items, e.it, older)
	if !ok {
		return
	}
	c.items = slices.Delete(c.items, i, i+1)
	c.q.depth--
	if len(c.items) == 0 {
		x.unorder(c)
		delete(c.q.classes, c.key)
		if len(c.q.classes) == 0 {
			delete(x.queues, e.it.QueueID)
		}
		return
	}
	if i == 0 {
		x.reHead(c)
	}
}

// unorder takes a class out of its queue's order.
func (x *index) unorder(c *class) {
	if i := slices.Index(c.q.order, c); i >= 0 {
		c.q.order = slices.Delete(c.q.order, i, i+1)
	}
}

// reHead recomputes a class's head and moves the class to its place.
func (x *index) reHead(c *class) {
	x.unorder(c)
	c.head = x.rank(*c.items[0])
	i, _ := slices.BinarySearchFunc(c.q.order, c, headBefore)
	c.q.order = slices.Insert(c.q.order, i, c)
}

// rerank recomputes every head (priorities rise with age) and re-sorts the queues.
func (x *index) rerank() {
	for _, q := range x.queues {
		q.rerank(x.rank)
	}
}

// rerank recomputes one queue's heads and re-sorts it.
func (q *qindex) rerank(rank func(store.RoutingItem) *candidate) {
	for _, c := range q.order {
		c.head = rank(*c.items[0])
	}
	slices.SortStableFunc(q.order, headBefore)
}

// depth counts a queue's queued items.
func (x *index) depth(queueID int64) int {
	if q := x.queues[queueID]; q != nil {
		return q.depth
	}
	return 0
}
