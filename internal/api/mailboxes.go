package api

import (
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// mailboxJSON is a mailbox as the API shows it. There is deliberately no field for its
// secret: PasswordSet only says whether one is stored.
type mailboxJSON struct {
	ID                  int64      `json:"id"`
	Name                string     `json:"name"`
	Direction           string     `json:"direction"`
	Protocol            string     `json:"protocol"`
	Address             string     `json:"address"`
	Host                string     `json:"host"`
	Port                int        `json:"port"`
	Security            string     `json:"security"`
	Login               string     `json:"login"`
	Folder              string     `json:"folder"`
	MaxSizeMB           int        `json:"max_size_mb"`
	PollIntervalSeconds int64      `json:"poll_interval_seconds"`
	Enabled             bool       `json:"enabled"`
	IsDefault           bool       `json:"is_default"`
	PasswordSet         bool       `json:"password_set"`
	Status              string     `json:"status"`
	StatusMessage       string     `json:"status_message"`
	StatusAt            *time.Time `json:"status_at"`
	LastOKAt            *time.Time `json:"last_ok_at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toMailboxJSON(m store.Mailbox) mailboxJSON {
	status := m.Status
	if status == "" {
		status = store.StatusUnknown
	}
	return mailboxJSON{
		ID: m.ID, Name: m.Name, Direction: m.Direction, Protocol: m.Protocol, Address: m.Address,
		Host: m.Host, Port: m.Port, Security: m.Security, Login: m.Login, Folder: m.Folder,
		MaxSizeMB: m.MaxSizeMB, PollIntervalSeconds: int64(m.PollInterval / time.Second),
		Enabled: m.Enabled, IsDefault: m.IsDefault, PasswordSet: m.PasswordSet,
		Status: status, StatusMessage: m.StatusMessage, StatusAt: timePtr(m.StatusAt), LastOKAt: timePtr(m.LastOKAt),
	}
}

func (s *server) listMailboxes(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	mbs, err := s.st.ListMailboxes(r.Context())
	if err != nil {
		s.writeStoreError(w, r, "mailboxes", err)
		return
	}
	out := struct {
		Items []mailboxJSON `json:"items"`
	}{Items: make([]mailboxJSON, 0, len(mbs))}
	for _, m := range mbs {
		out.Items = append(out.Items, toMailboxJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
}
