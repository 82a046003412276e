package ewstest

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// heartbeat is how often an open GetStreamingEvents connection gets a ConnectionStatus OK
// envelope when nothing happens.
const heartbeat = 5 * time.Second

// subscription is a streaming subscription (Subscribe with StreamingSubscriptionRequest)
// to new mail in one folder of a mailbox.
type subscription struct {
	id      string
	login   string
	mailbox string
	folder  string
	events  chan string // ItemIds of new items, queued while no connection is open
}

// notifyLocked queues a NewMailEvent for the subscriptions of the item's folder.
func (s *Server) notifyLocked(it *item) {
	for _, sub := range s.subs {
		if sub.mailbox == it.mailbox && sub.folder == it.folder {
			select {
			case sub.events <- it.id:
			default: // a full queue: the client reads the folder anyway
			}
		}
	}
}

// DropSubscriptions forgets every streaming subscription, as a restarted Client Access
// server does: the next GetStreamingEvents gets ErrorSubscriptionNotFound.
func (s *Server) DropSubscriptions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = map[string]*subscription{}
}

// Subscriptions is the number of live streaming subscriptions.
func (s *Server) Subscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

func (s *Server) subscribe(p principal, op *node) string {
	const name = "Subscribe"
	req := op.kid("StreamingSubscriptionRequest")
	if req == nil {
		return responseError(name, &ewsError{code: "ErrorInvalidSubscriptionRequest", text: "The stand-in serves streaming subscriptions only."})
	}
	mb, folder, err := s.folderRef(p, req.kid("FolderIds"))
	if err != nil {
		return responseError(name, err)
	}
	s.seq++
	sub := &subscription{id: fmt.Sprintf("JwBTVFJFQU1JTkcAAAA%08d", s.seq), login: p.login, mailbox: mb, folder: folder, events: make(chan string, 10000)}
	s.subs[sub.id] = sub
	return wrap(name, responseMessage(name, nil, `<m:SubscriptionId>`+sub.id+`</m:SubscriptionId>`))
}

// streamEvents serves GetStreamingEvents: envelopes, one after another on the open
// response, with the NewMailEvents of the subscription as they come and a ConnectionStatus
// OK heartbeat, until ConnectionTimeout minutes have passed (ConnectionStatus Closed).
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, login string, op *node) {
	const name = "GetStreamingEvents"
	id := op.path("SubscriptionIds", "SubscriptionId").text()
	minutes, err := strconv.Atoi(op.kid("ConnectionTimeout").text())
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if err != nil || minutes < 1 || minutes > 30 {
		_, _ = io.WriteString(w, envelope(responseError(name, &ewsError{code: "ErrorInvalidArgument", text: "ConnectionTimeout must be between 1 and 30 minutes."})))
		return
	}
	s.mu.Lock()
	sub := s.subs[id]
	s.mu.Unlock()
	if sub == nil || sub.login != login {
		_, _ = io.WriteString(w, envelope(responseError(name, &ewsError{code: "ErrorSubscriptionNotFound", text: "The specified subscription was not found."})))
		return
	}
	flush := func(body string) bool {
		if _, err := io.WriteString(w, envelopeNoDecl(body)); err != nil {
			return false
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		return true
	}
	status := func(st string) string {
		return wrap(name, responseMessage(name, nil, `<m:ConnectionStatus>`+st+`</m:ConnectionStatus>`))
	}
	end := time.NewTimer(time.Duration(minutes) * time.Minute)
	defer end.Stop()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	if !flush(status("OK")) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			flush(status("Closed"))
			return
		case <-beat.C:
			s.mu.Lock()
			_, live := s.subs[id]
			s.mu.Unlock()
			if !live {
				flush(responseError(name, &ewsError{code: "ErrorSubscriptionNotFound", text: "The specified subscription was not found."}))
				return
			}
			if !flush(status("OK")) {
				return
			}
		case itemID := <-sub.events:
			var b strings.Builder
			b.WriteString(`<m:Notifications><m:Notification><t:SubscriptionId>` + id + `</t:SubscriptionId>`)
			for n := 0; ; n++ {
				fmt.Fprintf(&b, `<t:NewMailEvent><t:TimeStamp>%s</t:TimeStamp><t:ItemId Id="%s"/><t:ParentFolderId Id="%s"/></t:NewMailEvent>`,
					time.Now().UTC().Format(time.RFC3339), esc(itemID), esc(sub.folder))
				if n >= 100 {
					break
				}
				select {
				case itemID = <-sub.events:
					continue
				default:
				}
				break
			}
			b.WriteString(`</m:Notification></m:Notifications>`)
			if !flush(wrap(name, responseMessage(name, nil, b.String()))) {
				return
			}
		}
	}
}

func envelopeNoDecl(body string) string {
	return strings.TrimPrefix(envelope(body), `<?xml version="1.0" encoding="utf-8"?>`)
}
