package bench

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Shape of the generated messages.
const (
	// lineWidth is where body text is wrapped (RFC 5322 §2.1.1 recommends at most 78).
	lineWidth = 72
	// htmlEvery makes every htmlEvery-th message multipart/alternative with an HTML part, as
	// many customer emails are; the others are text/plain.
	htmlEvery = 4
	// base64LineLen is the line length of base64 bodies (RFC 2045 §6.8: at most 76).
	base64LineLen = 76
	// minBody is the least body text a message gets, whatever the requested size.
	minBody = 200
	// paragraphPool is how many distinct paragraphs bodies are assembled from: generating
	// text word by word for every message would cost more than the ingest it feeds.
	paragraphPool = 512
)

// words is the vocabulary of the generated customer emails.
var words = strings.Fields(`order delivery parcel invoice refund account password login
	address payment card subscription plan upgrade cancel return exchange warranty repair
	broken damaged missing late tracking number courier week yesterday today tomorrow
	please could you help me check confirm update change send receive email phone call
	thanks thank regards again still not yet never always since because however although
	the a an my your our their this that these those it is was were be been have has had
	do does did will would can should may might must with without for from to of in on
	at by about after before during until when where why how what which who customer
	support team service product item box label store website app screen error message
	price discount coupon code charge twice amount balance statement bank transfer Müller
	café résumé size colour model version manual instructions battery charger cable
	screen keyboard printer router connection internet slow fast working stopped started`)

// topics start the subjects.
var topics = []string{
	"Question about my order", "Refund not received", "Cannot log in", "Parcel arrived damaged",
	"Change of delivery address", "Invoice copy needed", "Charged twice", "Product stopped working",
	"Cancel my subscription", "Where is my parcel?", "Warranty repair", "Discount code not accepted",
}

// names are the senders' first and last names.
var (
	firstNames = []string{"Anna", "Bruno", "Chloé", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Katarzyna", "Liam"}
	lastNames  = []string{"Schmidt", "Rossi", "Dubois", "Smith", "Nowak", "García", "Jensen", "Tanaka", "Silva", "Müller", "Okafor", "Larsen"}
)

// generator makes realistic customer emails of about a given size, each with a unique
// Message-ID. It is deterministic for a seed.
type generator struct {
	rng   *rand.Rand
	run   string // distinguishes the Message-IDs of one run from every other
	start time.Time
	paras []string // wrapped paragraphs, each ending in CRLF
}

func newGenerator(seed uint64, run string) *generator {
	g := &generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), run: run,
		start: time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)}
	for range paragraphPool {
		var p strings.Builder
		for s := 3 + g.rng.IntN(4); s > 0; s-- {
			if p.Len() > 0 {
				p.WriteByte(' ')
			}
			p.WriteString(g.sentence())
		}
		g.paras = append(g.paras, wrap(p.String()))
	}
	return g
}

// messageID is the Message-ID (without angle brackets) of message i.
func (g *generator) messageID(i int) string {
	return fmt.Sprintf("bench.%s.%d@customer.example.com", g.run, i)
}

// header writes the header fields every generated message has.
func (g *generator) header(b *bytes.Buffer, i int) {
	first := firstNames[g.rng.IntN(len(firstNames))]
	last := lastNames[g.rng.IntN(len(lastNames))]
	date := g.start.Add(time.Duration(i) * 17 * time.Second)
	local := strings.ToLower(asciiOnly(first) + "." + asciiOnly(last))
	fmt.Fprintf(b, "Return-Path: <%s%d@customer.example.com>\r\n", local, i)
	fmt.Fprintf(b, "Received: from mail.customer.example.com (mail.customer.example.com [192.0.2.%d])\r\n"+
		"\tby mx.example.test with ESMTPS id B%08X for <support@example.test>; %s\r\n",
		1+i%250, g.rng.Uint32(), date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "From: =?utf-8?q?%s_%s?= <%s%d@customer.example.com>\r\n", qWord(first), qWord(last), local, i)
	b.WriteString("To: Support <support@example.test>\r\n")
	fmt.Fprintf(b, "Subject: %s (order %d)\r\n", topics[g.rng.IntN(len(topics))], 100000+i)
	fmt.Fprintf(b, "Message-ID: <%s>\r\n", g.messageID(i))
	b.WriteString("MIME-Version: 1.0\r\n")
}

// message returns message i, of about size bytes.
func (g *generator) message(i, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 1024)
	g.header(&b, i)
	if i%htmlEvery != htmlEvery-1 {
		const partHeader = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
		room := max(size-b.Len()-len(partHeader), minBody)
		b.WriteString(partHeader)
		b.WriteString(g.text(room))
		return b.Bytes()
	}
	boundary := fmt.Sprintf("=_alt_%s_%d", g.run, i)
	// The HTML part carries the same text with markup (about 20% more), and the part
	// headers and the HTML frame take about 500 bytes.
	paras := g.paragraphs(max(size-b.Len()-500, minBody) * 5 / 11)
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	for _, p := range paras {
		b.WriteString(p)
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	b.WriteString("<html><head><meta charset=\"utf-8\"></head><body style=\"font-family: Arial, sans-serif\">\r\n")
	for _, p := range paras {
		b.WriteString("<p style=\"margin: 0 0 1em 0\">")
		b.WriteString(p)
		b.WriteString("</p>\r\n")
	}
	b.WriteString("<p>Kind regards,<br>\r\n<b>Customer</b></p></body></html>\r\n")
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}

// largeMessage returns message i, of about size bytes, as most large emails are: a short
// text and one attachment (base64, RFC 2045 §6.8) that makes up the rest.
func (g *generator) largeMessage(i, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 4096)
	g.header(&b, i)
	boundary := fmt.Sprintf("=_mixed_%s_%d", g.run, i)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	b.WriteString(g.text(600))
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/pdf; name=\"scan-%d.pdf\"\r\n"+
		"Content-Disposition: attachment; filename=\"scan-%d.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary, i, i)
	encoded := max(size-b.Len()-len(boundary)-8, 0)
	// base64 lines of base64LineLen characters plus CRLF carry base64LineLen*3/4 bytes.
	data := make([]byte, encoded/(base64LineLen+2)*base64LineLen*3/4)
	for j := range data {
		data[j] = byte(g.rng.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 0 {
		n := min(base64LineLen, len(enc))
		b.WriteString(enc[:n])
		b.WriteString("\r\n")
		enc = enc[n:]
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}

// largeTextMessage returns message i, of about size bytes, whose body is one long plain
// text (a log pasted into an email, a forwarded thread gone wild).
func (g *generator) largeTextMessage(i, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 4096)
	g.header(&b, i)
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for b.Len() < size {
		b.WriteString(g.text(min(64<<10, size-b.Len()+64)))
	}
	return b.Bytes()
}

// text is a body of about n bytes: a greeting, paragraphs, a signature.
func (g *generator) text(n int) string {
	const hello, bye = "Hello,\r\n\r\n", "Kind regards,\r\nCustomer\r\n"
	var b strings.Builder
	b.Grow(n + 1024)
	b.WriteString(hello)
	for _, p := range g.paragraphs(n - len(hello) - len(bye)) {
		b.WriteString(p)
		b.WriteString("\r\n")
	}
	b.WriteString(bye)
	return b.String()
}

// paragraphs picks paragraphs from the pool that add up to about n bytes (with a blank
// line after each), the last one cut at a line end to fit.
func (g *generator) paragraphs(n int) []string {
	var out []string
	for total := 0; total < n; {
		p := g.paras[g.rng.IntN(len(g.paras))]
		if room := n - total - 2; len(p) > room {
			cut := strings.LastIndex(p[:max(room, 0)], "\r\n")
			if cut <= 0 {
				break
			}
			p = p[:cut+2]
		}
		out = append(out, p)
		total += len(p) + 2
	}
	return out
}

// sentence is 6 to 16 words, capitalised, with a full stop or a question mark.
func (g *generator) sentence() string {
	k := 6 + g.rng.IntN(11)
	ws := make([]string, k)
	for j := range ws {
		ws[j] = words[g.rng.IntN(len(words))]
	}
	ws[0] = strings.ToUpper(ws[0][:1]) + ws[0][1:]
	end := "."
	if g.rng.IntN(5) == 0 {
		end = "?"
	}
	return strings.Join(ws, " ") + end
}

// wrap breaks text into CRLF lines of at most lineWidth bytes (longer words stay whole).
func wrap(text string) string {
	var b strings.Builder
	col := 0
	for _, w := range strings.Fields(text) {
		switch {
		case col == 0:
		case col+1+len(w) > lineWidth:
			b.WriteString("\r\n")
			col = 0
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteString("\r\n")
	return b.String()
}

// qWord encodes s for a "Q" encoded word (RFC 2047 §4.2).
func qWord(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// asciiOnly drops the bytes of s that are not ASCII letters (for address local parts).
func asciiOnly(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
