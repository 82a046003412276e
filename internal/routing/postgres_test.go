package routing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/postgres"
	"github.com/postroom/postroom/internal/testenv"
)

// pullerEnv tells the test binary to act as one postroom process pulling work
// (TestPullerProcess) instead of running the tests.
const pullerEnv = "POSTROOM_TEST_PULLER"

// TestTwoProcessesOnPostgreSQL: two processes, each with its own engine and 25 agents,
// pull 3,000 items from one PostgreSQL database at once; each item goes to exactly one
// agent.
func TestTwoProcessesOnPostgreSQL(t *testing.T) {
	url := testenv.Postgres(t)
	st, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := newWorldOn(t, st)
	q := w.queue("Support", routing.QueueSettings{})
	const items = 3000
	batch := make([]store.InboundMessage, 0, 500)
	for i := range items {
		c := &store.Classification{QueueID: q.ID}
		at := w.clk.Now().Add(-time.Duration(i) * time.Second)
		batch = append(batch, store.InboundMessage{MailboxID: w.mb.ID, Raw: []byte("x"), ReceivedAt: at, Classification: c,
			Message: store.Message{MailboxID: w.mb.ID, Direction: store.Inbound, SourceID: fmt.Sprintf("pg:%d", i), Subject: "x", Date: at}})
		if len(batch) == cap(batch) {
			if _, err := st.IngestMessages(t.Context(), batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	var names [2][]string
	for p := range 2 {
		for i := range 25 {
			n := fmt.Sprintf("p%da%02d", p, i)
			w.agent(n, nil, nil, 1000, store.AgentOffline)
			names[p] = append(names[p], n)
		}
	}
	var procs [2]*exec.Cmd
	var outs [2]bytes.Buffer
	for p := range 2 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestPullerProcess$", "-test.v")
		cmd.Env = append(os.Environ(), pullerEnv+"="+url+" "+strings.Join(names[p], ","))
		cmd.Stdout, cmd.Stderr = &outs[p], &outs[p]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[p] = cmd
	}
	got := map[int64][]int64{}
	for p, cmd := range procs {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("puller process %d: %v\n%s", p, err, outs[p].String())
		}
		var part map[int64]int64
		line := ""
		for l := range strings.SplitSeq(outs[p].String(), "\n") {
			if s, ok := strings.CutPrefix(l, "PULLED "); ok {
				line = s
			}
		}
		if err := json.Unmarshal([]byte(line), &part); err != nil {
			t.Fatalf("puller process %d printed no result: %v\n%s", p, err, outs[p].String())
		}
		if len(part) == 0 {
			t.Errorf("puller process %d got no item: both processes must take part", p)
		}
		for item, agent := range part {
			got[item] = append(got[item], agent)
		}
	}
	checkOnce(t, st, got, items)
}

// TestPullerProcess is one process of TestTwoProcessesOnPostgreSQL; it does nothing
// unless started by it.
func TestPullerProcess(t *testing.T) {
	arg := os.Getenv(pullerEnv)
	if arg == "" {
		return
	}
	url, list, _ := strings.Cut(arg, " ")
	ctx := t.Context()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var agents []store.User
	for _, n := range strings.Split(list, ",") {
		u, err := st.UserByUsername(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		agents = append(agents, u)
	}
	e := routing.NewEngine(routing.EngineOptions{Store: st, NoPush: true, IdleTimeout: -1})
	if err := e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go e.Run(rctx)
	got := pullAll(t, e, agents)
	flat := map[int64]int64{}
	for item, who := range got {
		if len(who) != 1 {
			t.Errorf("item %d pulled %d times in this process", item, len(who))
		}
		flat[item] = who[0]
	}
	b, _ := json.Marshal(flat)
	fmt.Printf("PULLED %s\n", b)
}
