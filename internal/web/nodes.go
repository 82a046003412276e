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

// holder names the node that holds mailbox id's lease ("" for none, or an expired one).
func (h *handler) holder(ctx context.Context, id int64) (string, error) {
	leases, err := h.st.ListLeases(ctx)
	if err != nil {
		return "", err
	}
	now := time.Now()
	for _, l := range leases {
		if l.MailboxID == id && l.ExpiresAt.After(now) {
			return cluster.NodeName(l.NodeID), nil
		}
	}
	return "", nil
}
