package web

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// TestReplyRecipientOutcomes: when the server took a reply for some recipients, deferred
// one and refused one for good, the agent sees on the work item who got it, who is still
// waiting (with the server's 4xx) and who never will (with the server's 5xx).
func TestReplyRecipientOutcomes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	agent, err := f.st.UserByUsername(ctx, "ana")
	if err != nil {
		t.Fatal(err)
	}
	wi := f.items["plain.eml"].WorkItemID
	raw := []byte("Message-ID: <split@example.com>\r\nSubject: Re: hello\r\n\r\nAnswer.\r\n")
	item, err := f.st.CreateReply(ctx, store.ReplyInput{
		WorkItemID: wi, UserID: agent.ID, Raw: raw, From: "support@example.com",
		Message: store.Message{MailboxID: f.outbound.ID, MessageID: "split@example.com", Subject: "Re: hello",
			FromAddr: "support@example.com", To: "carla@example.net, bob@example.net, dave@example.net", TextBody: "Answer."},
		Recipients: []string{"carla@example.net", "bob@example.net", "dave@example.net"},
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := f.st.RecordOutboxOutcome(ctx, item.ID, store.OutboxOutcome{
		Attempts: 1, At: now,
		Delivered: []string{"carla@example.net"},
		Deferred:  []string{"dave@example.net"}, DeferredError: "dave@example.net: 452 4.2.2 Mailbox full", NextAttemptAt: now.Add(time.Minute),
		Failed: []string{"bob@example.net"}, FailedError: "bob@example.net: 550 5.1.1 No such user",
	}); err != nil {
		t.Fatal(err)
	}

	page := f.signIn(t, "ana").get(fmt.Sprintf("/workitems/%d", wi))
	table := regexp.MustCompile(`(?s)<table class="outbox">.*?</table>`).FindString(page.body)
	rows := regexp.MustCompile(`(?s)<tr>.*?</tr>`).FindAllString(table, -1)
	text := func(row string) string {
		return strings.Join(strings.Fields(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(row, " ")), " ")
	}
	want := []struct{ who, state, says string }{
		{"dave@example.net", "queued", "452 4.2.2 Mailbox full"},
		{"carla@example.net", "sent", ""},
		{"bob@example.net", "failed", "550 5.1.1 No such user"},
	}
	var seen []string
	for _, row := range rows {
		seen = append(seen, text(row))
	}
	for _, w := range want {
		found := false
		for _, r := range seen {
			if strings.HasPrefix(r, w.who+" "+w.state+" ") && strings.Contains(r, w.says) {
				found = true
			}
		}
		if !found {
			t.Errorf("the work item's replies lack %s %s %q; rows:\n%s", w.who, w.state, w.says, strings.Join(seen, "\n"))
		}
	}
}
