package mstest

import (
	"net/http"
	"time"
)

// graphState is the Graph host's state.
type graphState struct {
	requests      map[string]int // Graph HTTP requests by client id
	tokenRequests map[string]int // token requests by client id
	throttle      map[throttleKey]*throttleState
	faults        faultState
	delta         map[string]*deltaState // by delta or skip token
	subs          map[string]*subscription
	uploads       map[string]*uploadSession
}

func newGraphState() graphState {
	return graphState{
		requests:      map[string]int{},
		tokenRequests: map[string]int{},
		throttle:      map[throttleKey]*throttleState{},
		delta:         map[string]*deltaState{},
		subs:          map[string]*subscription{},
		uploads:       map[string]*uploadSession{},
	}
}

type throttleKey struct{ clientID, mailbox string }

type throttleState struct {
	inFlight, maxInFlight int
	windowStart           time.Time
	count                 int
}

type deltaState struct{}

type uploadSession struct{}

func (s *Server) graphHandler() http.Handler {
	mux := http.NewServeMux()
	return mux
}

// changeNotificationsLocked returns the notifications a change of m in f causes.
func (s *Server) changeNotificationsLocked(mb *mailbox, f *folder, m *message, changeType string) []notification {
	return nil
}
