package web

import (
	"context"
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/cluster"
	"github.com/postroom/postroom/internal/store"
)

// The Nodes page (supervisors and admins): the postroom processes sharing this database,
// each with its state, its leases and its last heartbeat, and which node reads each
// inbound mailbox (internal/cluster).

func (h *handler) nodeRoutes(mux *pageMux) {
	mux.page("GET /nodes", store.RoleSupervisor, h.nodesPage)
}

func (h *handler) nodesPage(w http.ResponseWriter, r *http.Request, v viewer) {
	st, err := cluster.LoadStatus(r.Context(), h.st, h.leaseTime, time.Now())
	if err != nil {
		h.serverError(w, r, "read the cluster status", err)
		return
	}
	h.render(w, r, http.StatusOK, "nodes", h.data(v, "Nodes", "nodes", st))
}

// holders names, by mailbox, the node that holds its unexpired lease.
func (h *handler) holders(ctx context.Context) (map[int64]string, error) {
	leases, err := h.st.ListLeases(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make(map[int64]string, len(leases))
	for _, l := range leases {
		if l.ExpiresAt.After(now) {
			out[l.MailboxID] = cluster.NodeName(l.NodeID)
		}
	}
	return out, nil
}
