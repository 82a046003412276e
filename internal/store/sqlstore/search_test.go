package sqlstore

import (
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// TestSearchTokens: the words the index keeps, in any script, and nothing else.
func TestSearchTokens(t *testing.T) {
	for in, want := range map[string]string{
		"Hello, WORLD!":          "hello world",
		"bob@shop.example":       "bob shop example",
		"Order 4711-B, e-mail":   "order 4711 b e mail",
		"Straße Café ÉTÉ":        "straße café été",
		"Заказ №42":              "заказ 42",
		"नमस्ते दुनिया":          "नमस्ते दुनिया",
		"订单号abc":                 "订 单 订单 号 单号 abc",
		"注文 です":                  "注 文 注文 で す です",
		`"a" AND (b) -c* d:e ^f`: "a and b c d e f",
		"\x00bad\xffbytes":       "bad bytes",
		"":                       "",
	} {
		var got []string
		searchTokens(in, func(w string) { got = append(got, w) })
		if strings.Join(got, " ") != want {
			t.Errorf("searchTokens(%q) = %q, want %q", in, got, want)
		}
	}
	var long []string
	searchTokens(strings.Repeat("é", 80), func(w string) { long = append(long, w) })
	if len(long) != 1 || len(long[0]) != maxTokenBytes || long[0] != strings.Repeat("é", maxTokenBytes/2) {
		t.Errorf("a 160-byte word gives %q, want its first %d bytes", long, maxTokenBytes)
	}
}

// TestSearchDoc: a message's document holds each word once, and no more than the bound.
func TestSearchDoc(t *testing.T) {
	doc := searchDoc(store.Message{Subject: "Order order", FromName: "Ana", FromAddr: "ana@example.org",
		To: "support@example.com", Cc: "Order Desk <desk@example.org>", TextBody: "Where is my ORDER?"})
	if want := "order ana example org support com desk where is my"; doc != want {
		t.Errorf("searchDoc = %q, want %q", doc, want)
	}
	var body strings.Builder
	for i := range 100000 {
		body.WriteString("w")
		body.WriteString(strings.Repeat("x", i%7))
		body.WriteString(string(rune('a' + i%26)))
		body.WriteString(" ")
		body.WriteString(strings.Repeat("y", i%50))
		body.WriteString(" ")
	}
	if n := len(searchDoc(store.Message{TextBody: body.String()})); n > maxSearchDocBytes {
		t.Errorf("document of a huge body is %d bytes, want at most %d", n, maxSearchDocBytes)
	}
}

// TestSearchQuery: what a user types becomes quoted words of the engine's syntax, the
// last one a prefix; nothing of it is syntax.
func TestSearchQuery(t *testing.T) {
	sqlite, pg := SQLite(nil), Postgres(nil)
	for in, want := range map[string][2]string{
		"refund":              {`"refund"*`, `'refund':*`},
		`"order" AND 42 -x`:   {`"order" "and" "42" "x"`, `'order' & 'and' & '42' & 'x'`},
		"Order order ORDER":   {`"order"*`, `'order':*`},
		"NEAR(a b) OR c:d":    {`"near" "a" "b" "or" "c" "d"`, `'near' & 'a' & 'b' & 'or' & 'c' & 'd'`},
		`it's 'quoted' \"x\"`: {`"it" "s" "quoted" "x"`, `'it' & 's' & 'quoted' & 'x'`},
	} {
		for i, d := range []Dialect{sqlite, pg} {
			got, ok := d.searchQuery(in)
			if !ok || got != want[i] {
				t.Errorf("%s searchQuery(%q) = %q, %v; want %q", d.name, in, got, ok, want[i])
			}
		}
	}
	for _, in := range []string{"", `"`, "*", "-", ":", ")", "%_", "  "} {
		if got, ok := sqlite.searchQuery(in); ok {
			t.Errorf("searchQuery(%q) = %q, want no query (no word)", in, got)
		}
	}
}
