package ewstest

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Sample is a ready mailbox on the stand-in: a service account with Full Access to it.
type Sample struct {
	Mailbox, Login, Password string
	// Host and Port are where the stand-in listens (plain http: security "none").
	Host string
	Port int
}

// SampleSetup adds the sample service account and mailbox (address mailbox) and, when
// messages > 0, that many sample messages to its inbox.
func (s *Server) SampleSetup(mailbox string, messages int) (Sample, error) {
	login := "svc-postroom@" + domainOf(mailbox)
	sm := Sample{Mailbox: mailbox, Login: login, Password: "ews-sample-password"}
	s.AddUser(User{Login: login, Password: sm.Password})
	s.AddMailbox(mailbox)
	s.Grant(login, mailbox)
	host, port, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(s.URL(), "http://"), Path))
	if err != nil {
		return sm, fmt.Errorf("ewstest: address: %w", err)
	}
	sm.Host = host
	sm.Port, _ = strconv.Atoi(port)
	for i := range messages {
		if _, err := s.Deliver(mailbox, SampleMessage(i, mailbox)); err != nil {
			return sm, err
		}
	}
	return sm, nil
}

func domainOf(address string) string {
	if i := strings.LastIndexByte(address, '@'); i >= 0 {
		return address[i+1:]
	}
	return "contoso.local"
}

var sampleCustomers = []struct{ name, addr, subject, body string }{
	{"Dana Whitfield", "dana.whitfield@example.net", "Invoice 4471 charged twice", "Hello, my card was charged twice for invoice 4471. Can you refund one of them?"},
	{"Tomás Ferreira", "tomas@example.org", "Delivery address change", "Hi, I moved last week. Please send order 88213 to my new address."},
	{"Priya Natarajan", "priya.n@example.com", "Cannot log in to the portal", "Since this morning the portal says my password is wrong, though I did not change it."},
	{"Lena Vogel", "lena.vogel@example.de", "Cancel my subscription", "Please cancel my subscription at the end of this month."},
}

// SampleMessage is the i-th sample customer message to the address to.
func SampleMessage(i int, to string) []byte {
	c := sampleCustomers[i%len(sampleCustomers)]
	date := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	return fmt.Appendf(nil, "From: %s <%s>\r\nTo: Support <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <ews-sample-%d@%s>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n",
		c.name, c.addr, to, c.subject, date.Format(time.RFC1123Z), i, domainOf(c.addr), c.body)
}
