package api

import (
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/cluster"
	"github.com/postroom/postroom/internal/store"
)

// nodes answers GET /api/v1/nodes: every known node with its state, leases and last
// heartbeat, and which node reads each mailbox (internal/cluster).
func (s *server) nodes(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	st, err := cluster.LoadStatus(r.Context(), s.st, s.leaseTime, time.Now())
	if err != nil {
		s.internalError(w, r, "load the cluster status", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
