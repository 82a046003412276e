package demo

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"
)

// trafficMail are the customers and what they write about, for Traffic: billing questions,
// orders, a German customer, an urgent one, and an auto-reply now and then, so that the
// demo's rules, queues and skills all have work.
var trafficMail = []struct{ from, subject, body string }{
	{"Nora Price <nora.price@example.net>", "Invoice %d charged twice", "Hello, my card was charged twice for invoice %d. Can you refund one of them?\n\nNora"},
	{"Omar Haddad <omar@example.org>", "Where is my order %d?", "Hi, order %d has not arrived yet and the tracking link shows nothing. Could you check?\n\nOmar"},
	{"Jana Schulz <jana.schulz@example.de>", "Bestellung %d", "Guten Tag, meine Bestellung %d ist noch nicht angekommen. Können Sie bitte nachsehen, wo sie bleibt?\n\nViele Grüße\nJana Schulz"},
	{"Priya Nair <priya@example.com>", "URGENT: cannot log in (ticket %d)", "Our whole team cannot log in since this morning (ref %d). Please help as soon as possible.\n\nPriya"},
	{"Lucas Martin <lucas.martin@example.fr>", "Payment declined for order %d", "Hello, my payment was declined for order %d although my card works elsewhere.\n\nLucas"},
	{"Mia Wong <mia.wong@example.net>", "Question about my subscription %d", "Hi, can I switch subscription %d to yearly billing?\n\nThanks, Mia"},
	{"Ben Okafor <ben.okafor@example.org>", "Parcel %d damaged", "The parcel for order %d arrived damaged. What can I do?\n\nBen"},
}

// trafficAutoReply is the odd out-of-office answer, which the demo's rules close.
const trafficAutoReply = "Out of office: I am away until Monday and will answer your message %d then."

// Traffic delivers a new customer email to the support mailbox every interval until ctx
// ends (postroom demo -traffic), so that the board keeps moving.
func (s *Server) Traffic(ctx context.Context, every time.Duration) {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
		raw := trafficMessage(r, n, time.Now())
		if _, err := s.store.deliver(SupportLogin, raw, time.Now()); err != nil {
			s.log.Warn("demo traffic: delivery failed", slog.Any("error", err))
		}
	}
}

// trafficMessage composes the n-th traffic email.
func trafficMessage(r *rand.Rand, n int, now time.Time) []byte {
	ref := 10000 + r.IntN(90000)
	var from, subject, body, extra string
	if r.IntN(12) == 0 {
		from, subject = "Sam Away <sam.away@example.net>", "Automatic reply: your message"
		body = fmt.Sprintf(trafficAutoReply, ref)
		extra = "Auto-Submitted: auto-replied\r\n"
	} else {
		m := trafficMail[r.IntN(len(trafficMail))]
		from, subject, body = m.from, fmt.Sprintf(m.subject, ref), fmt.Sprintf(m.body, ref)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: Support <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <traffic-%d-%d@demo.example>\r\n%s",
		from, SupportAddress, subject, now.Format(time.RFC1123Z), now.UnixNano(), n, extra)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n") + "\r\n")
	return []byte(b.String())
}
