package graph_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// env is a stand-in Microsoft 365 tenant with the sample app and shared mailbox (empty),
// and a token source for the app as postroom builds it.
type env struct {
	srv    *mstest.Server
	sample *mstest.Sample
	token  connector.TokenFunc
	logs   *testenv.LogBuffer
	log    *slog.Logger
}

func newEnv(t *testing.T, opts mstest.Options) *env {
	t.Helper()
	srv, err := mstest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	sm, err := srv.SampleTenant(mstest.SampleOptions{Messages: -1})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &env{srv: srv, sample: sm, logs: logs, log: log, token: appToken(srv, sm, log)}
}

// appToken is the client credentials grant for the sample app with a Graph scope.
func appToken(srv *mstest.Server, sm *mstest.Sample, log *slog.Logger) connector.TokenFunc {
	return credential.ClientCredentials(credential.OAuthConfig{
		TokenURL: srv.TokenURL(sm.TenantID), ClientID: sm.ClientID, ClientSecret: vault.NewSecret(sm.ClientSecret),
		Scopes: []string{"https://graph.microsoft.com/.default"}, Logger: log,
	})
}

// agentToken is the password grant of the sample's agent (a person with FullAccess and
// SendAs on the shared mailbox) for the given Graph scopes.
func (e *env) agentToken(scopes ...string) connector.TokenFunc {
	return credential.ResourceOwnerPassword(credential.OAuthConfig{
		TokenURL: e.srv.TokenURL(e.sample.TenantID), ClientID: e.sample.ClientID, ClientSecret: vault.NewSecret(e.sample.ClientSecret),
		Scopes: scopes, Logger: e.log,
	}, e.sample.Agent, vault.NewSecret(e.sample.AgentPassword))
}

// config is a Source/Sink configuration for the sample mailbox.
func (e *env) config() graph.Config {
	return graph.Config{GraphURL: e.srv.GraphURL(), Mailbox: e.sample.Mailbox, Token: e.token, Logger: e.log}
}

func (e *env) open(t *testing.T, cfg graph.Config) *graph.Source {
	t.Helper()
	src, err := graph.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

// deliver puts n customer emails numbered from first into folder and returns their raw
// bytes by Message-ID.
func (e *env) deliver(t *testing.T, folder string, first, n int) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for i := first; i < first+n; i++ {
		raw := customerMail(i)
		if _, err := e.srv.Deliver(e.sample.Mailbox, folder, raw); err != nil {
			t.Fatal(err)
		}
		out[messageID(i)] = raw
	}
	return out
}

func messageID(i int) string { return fmt.Sprintf("<customer-%d@example.net>", i) }

func customerMail(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <c%d@example.net>\r\nTo: support@contoso.example\r\n"+
		"Subject: Question number %d\r\nDate: Fri, 20 Nov 2026 09:%02d:00 +0000\r\nMessage-ID: %s\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, this is question %d.\r\n",
		i, i, i, i%60, messageID(i), i)
}

// headerValue returns the first value of a header field in raw.
func headerValue(raw []byte, name string) string {
	for line := range strings.SplitSeq(string(raw), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ingest plays the ingest pipeline: each batch is "stored" (deduplicated by SourceID, the
// cursor kept as a store would keep it in the same transaction), then acknowledged.
type ingest struct {
	stored  map[string][]byte // by SourceID
	order   []string
	dups    int
	cursor  string
	cursors int // messages that carried a cursor
}

func newIngest() *ingest { return &ingest{stored: map[string][]byte{}} }

// drain runs Next/store/Ack until Next returns nothing, and returns how many messages
// Next handed out.
func (in *ingest) drain(t *testing.T, src *graph.Source, batch int) int {
	t.Helper()
	total := 0
	for range 10_000 {
		msgs, err := src.Next(context.Background(), batch)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if len(msgs) == 0 {
			return total
		}
		total += len(msgs)
		ids := in.store(msgs)
		if err := src.Ack(context.Background(), ids); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	t.Fatal("Next never ran dry")
	return 0
}

func (in *ingest) store(msgs []connector.Incoming) []string {
	var ids []string
	for _, m := range msgs {
		if _, ok := in.stored[m.SourceID]; ok {
			in.dups++
		} else {
			in.stored[m.SourceID] = m.Raw
			in.order = append(in.order, m.SourceID)
		}
		if m.Cursor != "" {
			in.cursor = m.Cursor
			in.cursors++
		}
		ids = append(ids, m.SourceID)
	}
	return ids
}

// byMessageID indexes the stored messages by their Message-ID.
func (in *ingest) byMessageID() map[string][]byte {
	out := map[string][]byte{}
	for _, raw := range in.stored {
		out[headerValue(raw, "Message-ID")] = raw
	}
	return out
}
