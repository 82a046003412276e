package demo

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/message"
)

// TestTrafficMessages: the demo's generated customers write parseable mail, now and then
// an auto-reply that postroom recognises as automatic.
func TestTrafficMessages(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	automatic, german := 0, 0
	for n := range 200 {
		raw := trafficMessage(r, n, time.Now())
		m := message.Parse(raw)
		if m.Unparsed || m.Subject == "" || m.FromAddr == "" || m.TextBody == "" {
			t.Fatalf("message %d: unparsed %v, subject %q, from %q, body %q", n, m.Unparsed, m.Subject, m.FromAddr, m.TextBody)
		}
		if message.Automatic(message.Header(raw), m.FromAddr) != "" {
			automatic++
		}
		if m.FromAddr == "jana.schulz@example.de" {
			german++
		}
	}
	if automatic == 0 || automatic > 40 || german == 0 {
		t.Errorf("of 200: %d automatic, %d German; want a few of each", automatic, german)
	}
}
