package ews_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/ewstest"
	"github.com/postroom/postroom/internal/vault"
)

const (
	box   = "support@contoso.local"
	login = "svc@contoso.local"
)

func setup(t *testing.T) (*ewstest.Server, ews.Config) {
	t.Helper()
	s, err := ewstest.Start(ewstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddUser(ewstest.User{Login: login, Password: "pw", Mailbox: login})
	s.AddMailbox(box)
	s.Grant(login, box)
	return s, ews.Config{URL: s.URL(), Mailbox: box, Login: login, Password: vault.NewSecret("pw"), PageSize: 3}
}

func msg(i int) []byte {
	return fmt.Appendf(nil, "From: c%d@example.com\r\nTo: %s\r\nSubject: n%d\r\nMessage-ID: <m%d@example.com>\r\n\r\nbody %d\r\n", i, box, i, i, i)
}

// drain reads everything, acknowledging after each batch as ingest does; it returns the
// subjects and the last cursor.
func drain(t *testing.T, src *ews.Source, stored map[string]bool) (got []string, cursor string) {
	t.Helper()
	ctx := context.Background()
	for range 100 {
		in, err := src.Next(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(in) == 0 {
			return got, cursor
		}
		var ids []string
		for _, m := range in {
			if stored[m.SourceID] {
				t.Fatalf("%s handed out twice", m.SourceID)
			}
			stored[m.SourceID] = true
			got = append(got, strings.SplitN(strings.SplitN(string(m.Raw), "Subject: ", 2)[1], "\r\n", 2)[0])
			ids = append(ids, m.SourceID)
			if m.Cursor != "" {
				cursor = m.Cursor
			}
		}
		if err := src.Ack(ctx, ids); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("no end")
	return nil, ""
}

func TestSourceReadsMarksReadAndResumes(t *testing.T) {
	s, cfg := setup(t)
	for i := range 7 {
		if _, err := s.Deliver(box, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	stored := map[string]bool{}
	cfg.Skip = func(id string) bool { return stored[id] }
	src, err := ews.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, cursor := drain(t, src, stored)
	if len(got) != 7 || got[0] != "n0" || got[6] != "n6" {
		t.Fatalf("got %v", got)
	}
	for _, m := range s.Messages(box, "inbox") {
		if !m.IsRead {
			t.Fatalf("%s not marked read", m.ID)
		}
	}
	// A new Source from the saved cursor reads only what is new.
	s.Deliver(box, msg(7))
	cfg.Cursor = cursor
	src2, _ := ews.Open(context.Background(), cfg)
	got, _ = drain(t, src2, stored)
	if len(got) != 1 || got[0] != "n7" {
		t.Fatalf("after resume got %v", got)
	}
}

func TestInvalidSyncStateRereadsNothingTwice(t *testing.T) {
	s, cfg := setup(t)
	for i := range 4 {
		s.Deliver(box, msg(i))
	}
	stored := map[string]bool{}
	cfg.Skip = func(id string) bool { return stored[id] }
	cfg.AfterAction = "keep" // stored messages stay unread: only dedup keeps them out
	src, _ := ews.Open(context.Background(), cfg)
	got, _ := drain(t, src, stored)
	if len(got) != 4 {
		t.Fatalf("got %v", got)
	}
	s.InvalidateSyncStates()
	s.Deliver(box, msg(4))
	got, _ = drain(t, src, stored)
	if len(got) != 1 || got[0] != "n4" {
		t.Fatalf("after invalidation got %v", got)
	}
}

func TestThrottlingHonoured(t *testing.T) {
	s, cfg := setup(t)
	s.Deliver(box, msg(1))
	s.Throttle(2, 150*time.Millisecond)
	src, _ := ews.Open(context.Background(), cfg)
	t0 := time.Now()
	in, err := src.Next(context.Background(), 10)
	if err != nil || len(in) != 1 {
		t.Fatalf("%v %v", in, err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("did not wait the back-off: %s", d)
	}
}

func TestFaultsThenRecovery(t *testing.T) {
	s, cfg := setup(t)
	s.Deliver(box, msg(1))
	stored := map[string]bool{}
	src, _ := ews.Open(context.Background(), cfg)
	s.FailNext(ewstest.Fault{Kind: ewstest.FaultDrop, Op: "GetItem"})
	if _, err := src.Next(context.Background(), 10); err == nil || connector.IsPermanent(err) {
		t.Fatalf("want a temporary error, got %v", err)
	}
	s.FailNext(ewstest.Fault{Kind: ewstest.Fault500})
	if _, err := src.Next(context.Background(), 10); err == nil || connector.IsPermanent(err) {
		t.Fatalf("want a temporary error, got %v", err)
	}
	got, _ := drain(t, src, stored)
	if len(got) != 1 {
		t.Fatalf("got %v", got)
	}
}

func TestErrorsNameTheFix(t *testing.T) {
	s, cfg := setup(t)
	ctx := context.Background()
	check := func(name string, cfg ews.Config, code, advice string) {
		t.Helper()
		err := ews.Check(ctx, cfg)
		var ce *connector.Error
		if !errors.As(err, &ce) || (code != "" && ews.Code(err) != code) || !strings.Contains(ce.Advice, advice) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	c := cfg
	c.Mailbox = "nobody@contoso.local"
	check("unknown mailbox", c, "ErrorNonExistentMailbox", "primary SMTP address")
	s.AddMailbox("other@contoso.local")
	c.Mailbox = "other@contoso.local"
	check("no access", c, "ErrorAccessDenied", "Add-MailboxPermission")
	c.Impersonate = true
	check("impersonation denied", c, "ErrorImpersonateUserDenied", "ApplicationImpersonation")
	c = cfg
	c.Password = vault.NewSecret("wrong")
	check("bad password", c, "", "it offers: Basic, Bearer")
	if err := ews.Check(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// Impersonation with the role works.
	s.AddUser(ewstest.User{Login: "app@contoso.local", Password: "pw2", Impersonate: true})
	c = cfg
	c.Login, c.Password, c.Impersonate, c.Mailbox = "app@contoso.local", vault.NewSecret("pw2"), true, "other@contoso.local"
	if err := ews.Check(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Persistent throttling ends in an error naming the back-off.
	s.Throttle(100, time.Millisecond)
	check("busy", cfg, "ErrorServerBusy", "throttling")
}

func TestBearerToken(t *testing.T) {
	s, cfg := setup(t)
	s.AddToken("tok-1", login)
	refreshed := false
	cfg.Login, cfg.Password = "", vault.Secret{}
	cfg.Token = func(ctx context.Context, refresh bool) (string, error) {
		if refresh {
			refreshed = true
			return "tok-1", nil
		}
		return "stale", nil
	}
	if err := ews.Check(context.Background(), cfg); err != nil || !refreshed {
		t.Fatalf("%v refreshed=%v", err, refreshed)
	}
}

func TestSinkSendsMIMEAsIs(t *testing.T) {
	s, cfg := setup(t)
	s.AddMailbox("agent2@contoso.local")
	sink, err := ews.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte("From: " + box + "\r\nTo: customer@example.com\r\nSubject: Re: help\r\nMessage-ID: <r1@contoso.local>\r\nIn-Reply-To: <q1@example.com>\r\nReferences: <q1@example.com>\r\n\r\nanswer\r\n")
	if err := sink.Send(context.Background(), box, []string{"customer@example.com", "agent2@contoso.local"}, raw); err != nil {
		t.Fatal(err)
	}
	sent := s.Sent()
	if len(sent) != 1 || string(sent[0].Raw) != string(raw) || len(sent[0].Recipients) != 2 {
		t.Fatalf("sent %+v", sent)
	}
	if n := len(s.Messages("agent2@contoso.local", "inbox")); n != 1 {
		t.Fatalf("bcc copy: %d", n)
	}
	if m := s.Messages(box, "sentitems"); len(m) != 1 || !strings.Contains(string(m[0].Raw), "In-Reply-To: <q1@example.com>") {
		t.Fatalf("sent items: %+v", m)
	}
}

func TestMoveAndOverSize(t *testing.T) {
	s, cfg := setup(t)
	big := append(msg(1), strings.Repeat("x", 4096)...)
	s.Deliver(box, big)
	cfg.AfterAction, cfg.MoveFolder, cfg.MaxSizeBytes = "move", "deleteditems", 1024
	src, _ := ews.Open(context.Background(), cfg)
	in, err := src.Next(context.Background(), 10)
	if err != nil || len(in) != 1 || !in[0].OverSize || in[0].Size != int64(len(big)) || strings.Contains(string(in[0].Raw), "xxxx") {
		t.Fatalf("%+v %v", in, err)
	}
	s.Deliver(box, msg(2))
	in, _ = src.Next(context.Background(), 10)
	if err := src.Ack(context.Background(), []string{in[0].SourceID}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Messages(box, "deleteditems")); n != 1 {
		t.Fatalf("moved: %d", n)
	}
}

func TestStreamingNotificationsWake(t *testing.T) {
	s, cfg := setup(t)
	src, _ := ews.Open(context.Background(), cfg)
	ctx := context.Background()
	// The first Wait subscribes and returns at once.
	t0 := time.Now()
	if err := src.Wait(ctx, 5*time.Second); err != nil || time.Since(t0) > time.Second || s.Subscriptions() != 1 {
		t.Fatalf("subscribe: %v after %s, %d subscriptions", err, time.Since(t0), s.Subscriptions())
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		s.Deliver(box, msg(1))
	}()
	t0 = time.Now()
	src.Wait(ctx, 5*time.Second)
	if d := time.Since(t0); d > 2*time.Second || d < 150*time.Millisecond {
		t.Fatalf("woke after %s", d)
	}
	in, err := src.Next(ctx, 10)
	if err != nil || len(in) != 1 {
		t.Fatalf("%v %v", in, err)
	}
	// A lost subscription is made again; meanwhile Wait ends at its limit.
	s.DropSubscriptions()
	src.Wait(ctx, 6*time.Second) // the heartbeat finds the subscription gone
	src.Wait(ctx, time.Second)   // subscribes again
	if s.Subscriptions() != 1 {
		t.Fatalf("%d subscriptions", s.Subscriptions())
	}
}

func TestNTLM(t *testing.T) {
	s, cfg := setup(t)
	s.AddUser(ewstest.User{Login: `CONTOSO\svc2`, Password: "Secr3t!"})
	s.Grant(`CONTOSO\svc2`, box)
	s.RequireNTLM()
	s.Deliver(box, msg(1))
	cfg.Login, cfg.Password = `CONTOSO\svc2`, vault.NewSecret("Secr3t!")
	src, err := ews.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	in, err := src.Next(context.Background(), 10)
	if err != nil || len(in) != 1 {
		t.Fatalf("%v %v", in, err)
	}
	cfg.Password = vault.NewSecret("wrong")
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{}} // a new connection: not signed in yet
	err = ews.Check(context.Background(), cfg)
	if err == nil || !strings.Contains(connector.Advice(err), "NTLM, Negotiate") {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestImpersonationFallback: an account with the ApplicationImpersonation role but no Full
// Access reads and sends by impersonating, without a setting.
func TestImpersonationFallback(t *testing.T) {
	s, cfg := setup(t)
	s.AddUser(ewstest.User{Login: "app@contoso.local", Password: "pw2", Impersonate: true})
	cfg.Login, cfg.Password = "app@contoso.local", vault.NewSecret("pw2")
	s.Deliver(box, msg(1))
	src, err := ews.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	in, err := src.Next(context.Background(), 10)
	if err != nil || len(in) != 1 {
		t.Fatalf("%v %v", in, err)
	}
	if err := src.Ack(context.Background(), []string{in[0].SourceID}); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message(strings.TrimPrefix(in[0].SourceID, "ews:")); !m.IsRead {
		t.Error("not marked read")
	}
	sink, _ := ews.NewSink(cfg)
	if err := sink.Send(context.Background(), box, []string{"customer@example.com"}, []byte("From: "+box+"\r\nTo: customer@example.com\r\nSubject: x\r\n\r\ny\r\n")); err != nil {
		t.Fatal(err)
	}
	if len(s.Messages(box, "sentitems")) != 1 {
		t.Error("no copy in Sent Items of the impersonated mailbox")
	}
}
