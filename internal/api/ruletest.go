package api

import (
	"errors"
	"net/http"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// testRules runs a rule (unsaved, from the body) or the saved rules in order on a stored
// message and answers what each condition saw and which actions would apply. It changes
// nothing.
func (s *server) testRules(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	var body struct {
		Rule       *routing.Rule `json:"rule"`
		MessageID  int64         `json:"message_id"`
		WorkItemID int64         `json:"work_item_id"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	ctx := r.Context()
	id := body.MessageID
	if id == 0 && body.WorkItemID > 0 {
		wi, err := s.st.WorkItem(ctx, body.WorkItemID)
		if err != nil {
			if store.IsNotFound(err) {
				writeFieldErrors(w, map[string]string{"work_item_id": "no work item has this id: check it"})
				return
			}
			s.internalError(w, r, "read the work item", err)
			return
		}
		id = wi.MessageID
	}
	if id <= 0 {
		writeFieldErrors(w, map[string]string{"message_id": "give the id of a stored message to test on (or work_item_id: a work item's latest message)"})
		return
	}
	var (
		res routing.RuleTest
		err error
	)
	if body.Rule != nil {
		res, err = routing.TryRule(ctx, s.st, *body.Rule, id)
	} else {
		rules, lerr := routing.SavedRules(ctx, s.st)
		if lerr != nil {
			s.internalError(w, r, "read the rules", lerr)
			return
		}
		res, err = routing.TryRules(ctx, s.st, rules, id)
	}
	var verr *routing.ValidationError
	switch {
	case errors.As(err, &verr):
		fields := map[string]string{}
		for k, v := range verr.Fields {
			if body.Rule != nil {
				// A single rule validates as rules[0]; the body calls it "rule".
				k = "rule." + trimRulesPrefix(k)
			}
			fields[k] = v
		}
		writeFieldErrors(w, fields)
	case store.IsNotFound(err):
		writeFieldErrors(w, map[string]string{"message_id": "no stored message has this id: check it"})
	case err != nil:
		s.internalError(w, r, "test the rules", err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// trimRulesPrefix turns "rules[0].conditions[1].value" into "conditions[1].value".
func trimRulesPrefix(k string) string {
	const p = "rules[0]."
	if len(k) > len(p) && k[:len(p)] == p {
		return k[len(p):]
	}
	return k
}
