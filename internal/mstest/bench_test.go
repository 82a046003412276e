package mstest

import (
	"testing"
)

// BenchmarkDeltaAndValue measures the stand-in's share of a Graph ingest: one delta round
// over 5,000 messages (pages of 100) and $value for each, as postroom's Graph source does.
func BenchmarkDeltaAndValue(b *testing.B) {
	t := b
	f := newFixture(b, Options{RateLimit: 1 << 30})
	for i := range 5000 {
		if _, err := f.s.Deliver(testShared, "inbox", SampleMessage(i)); err != nil {
			b.Fatal(err)
		}
	}
	tok := f.appToken(t, GraphAudience+"/.default")
	b.ResetTimer()
	for range b.N {
		items, _, _ := f.collect(t, "/v1.0/users/"+testShared+"/mailFolders/inbox/messages/delta?$select=id", tok,
			"Prefer", "odata.maxpagesize=100", "Prefer", immutable)
		for _, it := range items {
			g := f.graph(t, "GET", "/v1.0/users/"+testShared+"/messages/"+it["id"].(string)+"/$value", tok, nil)
			if g.status != 200 {
				b.Fatalf("$value: %d", g.status)
			}
		}
		if len(items) != 5000 {
			b.Fatalf("%d items", len(items))
		}
	}
	b.ReportMetric(float64(5000*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
