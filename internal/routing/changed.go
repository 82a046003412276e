package routing

import "sync"

// changeSignal tells waiters that something changed: each waiter gets a channel that is
// closed at the next notify. It keeps no list of subscribers, so a waiter that goes away
// leaves nothing behind.
type changeSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *changeSignal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *changeSignal) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// Changed returns a channel that is closed at the next change the engine applies (an
// offer, an assignment, a returned offer) or is told of through Wake (an item stored, an
// action on an item, an agent's status), on this node or, through the engine's wake-up
// bus (EngineOptions.Wakeups), on another. Live views wait on it and then call Changed
// again.
func (e *Engine) Changed() <-chan struct{} { return e.changes.wait() }
