package main

import (
	"context"
	"fmt"

	"github.com/postroom/postroom/internal/compose"
	"github.com/postroom/postroom/internal/store"
)

// seedResponses gives the demo a few canned responses (two for every queue, one for
// Billing) and a signature per queue, so that a newcomer finds them under Template on a
// work item and under the reply box.
func seedResponses(ctx context.Context, st store.Store, supportID, billingID int64) error {
	templates := []store.ResponseTemplate{
		{Name: "We are on it", Body: "Hello {{.CustomerName}},\n\nthank you for writing. I am looking into your request {{.WorkItem}} " +
			"(\"{{.Subject}}\") and will come back to you today.\n"},
		{Name: "Parcel on its way", Body: "Hello {{.CustomerName}},\n\nyour parcel left our warehouse today; " +
			"you will receive the tracking link by email shortly.\n"},
		{QueueID: billingID, Name: "Refund issued", Body: "Hello {{.CustomerName}},\n\nwe have issued your refund: it reaches your account " +
			"within 5 working days. Your request number is {{.WorkItem}}.\n"},
	}
	for _, t := range templates {
		if err := compose.ValidateResponse(t.Name, t.Body); err != nil {
			return fmt.Errorf("demo template %q: %w", t.Name, err)
		}
		if _, err := st.SaveResponseTemplate(ctx, t); err != nil {
			return fmt.Errorf("demo template %q: %w", t.Name, err)
		}
	}
	for _, qid := range []int64{supportID, billingID} {
		g := store.Signature{QueueID: qid, Body: "Kind regards,\n{{.AgentName}}\n{{.Queue}} team, Example Shop"}
		if _, err := st.SetSignature(ctx, g); err != nil {
			return fmt.Errorf("demo signature: %w", err)
		}
	}
	return nil
}
