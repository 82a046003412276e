package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/postgres"
	"github.com/postroom/postroom/internal/store/sqlite"
)

// RoutingOptions configure the routing benchmark.
type RoutingOptions struct {
	Store       string // "sqlite" or "postgres"
	PostgresURL string // server to create a throwaway database on
	Agents      int
	Items       int
	Queues      int
	Logger      *slog.Logger
	Progress    io.Writer
	// CPUProfile, when set, is written while the agents work.
	CPUProfile string
}

// RoutingResult is one store's figures.
type RoutingResult struct {
	Store          string
	Agents, Items  int
	Assigned       int
	PerSecond      float64
	P99DecisionMS  float64 // the engine's choice: lock wait and decision, per pull or offer
	P99AssignMS    float64 // the agent's wait: from the pull or accept to the committed change
	DoubleAssigned int
}

// Line is the result line the issue pins.
func (r RoutingResult) Line() string {
	return fmt.Sprintf("store=%s agents=%d items=%d assignments_per_s=%.0f p99_decision_ms=%.2f p99_assign_ms=%.1f double_assigned=%d",
		r.Store, r.Agents, r.Items, r.PerSecond, r.P99DecisionMS, r.P99AssignMS, r.DoubleAssigned)
}

var benchSkills = []string{"billing", "orders", "returns", "tech", "general"}
var benchLanguages = []string{"en", "de", "fr"}

// Routing loads agents and queued items into a fresh store and lets every agent pull and
// accept pushed offers at once, through one engine, until every item is assigned. A
// decision is one Pull or Accept call, timed from the agent's side.
func Routing(ctx context.Context, o RoutingOptions) (RoutingResult, error) {
	res := RoutingResult{Store: o.Store, Agents: o.Agents, Items: o.Items}
	st, cleanup, err := openBenchStore(ctx, o)
	if err != nil {
		return res, err
	}
	defer cleanup()
	if err := st.Migrate(ctx); err != nil {
		return res, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	progress := func(f string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, f+"\n", a...)
		}
	}
	// Teams: one per queue; each agent is in 1-3 of them.
	var teams []int64
	for i := range o.Queues {
		t, err := st.CreateTeam(ctx, fmt.Sprintf("team%02d", i))
		if err != nil {
			return res, err
		}
		teams = append(teams, t.ID)
	}
	var queues []int64
	for i := range o.Queues {
		q, err := st.CreateQueue(ctx, store.Queue{Name: fmt.Sprintf("queue%02d", i), Enabled: true})
		if err != nil {
			return res, err
		}
		spec, _ := json.Marshal(routing.QueueSettings{Teams: []int64{teams[i]}})
		if err := st.SetQueueSpec(ctx, q.ID, q.Name, spec); err != nil {
			return res, err
		}
		queues = append(queues, q.ID)
	}
	mb, err := st.CreateMailbox(ctx, store.Mailbox{Name: "bench", Direction: store.Inbound, Protocol: "imap", Host: "127.0.0.1",
		Port: 143, Security: "none", Folder: "INBOX", MaxSizeMB: 5, PollInterval: time.Minute})
	if err != nil {
		return res, err
	}
	agents := make([]store.User, o.Agents)
	for i := range agents {
		u, err := st.CreateUser(ctx, store.User{Username: fmt.Sprintf("agent%04d", i), Role: store.RoleAgent})
		if err != nil {
			return res, err
		}
		skills := map[string]int{}
		for _, s := range benchSkills {
			if rng.IntN(2) == 0 {
				skills[s] = 1 + rng.IntN(10)
			}
		}
		langs := []string{"en"}
		if rng.IntN(2) == 0 {
			langs = append(langs, benchLanguages[1+rng.IntN(2)])
		}
		var ts []int64
		for range 1 + rng.IntN(3) {
			ts = append(ts, teams[rng.IntN(len(teams))])
		}
		if err := st.SetUserTeams(ctx, u.ID, ts); err != nil {
			return res, err
		}
		if err := st.SaveAgent(ctx, store.Agent{UserID: u.ID, Skills: skills, Languages: langs, Capacity: 100}); err != nil {
			return res, err
		}
		agents[i] = u
	}
	progress("created %d agents in %d queues; storing %d items", o.Agents, o.Queues, o.Items)
	start := time.Now().Add(-2 * time.Hour)
	batch := make([]store.InboundMessage, 0, 500)
	for i := range o.Items {
		c := &store.Classification{QueueID: queues[rng.IntN(len(queues))], PriorityAdjust: rng.IntN(3) * 10}
		if rng.IntN(2) == 0 {
			c.Skills = map[string]int{benchSkills[rng.IntN(len(benchSkills))]: 1 + rng.IntN(3)}
		}
		if rng.IntN(5) == 0 {
			c.Language = benchLanguages[rng.IntN(len(benchLanguages))]
		}
		at := start.Add(time.Duration(i) * 50 * time.Millisecond)
		batch = append(batch, store.InboundMessage{MailboxID: mb.ID, Raw: []byte("Subject: x\r\n\r\nx\r\n"), ReceivedAt: at,
			Classification: c, Message: store.Message{MailboxID: mb.ID, Direction: store.Inbound,
				SourceID: fmt.Sprintf("bench:%d", i), Subject: fmt.Sprintf("item %d", i), FromAddr: "c@example.org", Date: at}})
		if len(batch) == cap(batch) || i == o.Items-1 {
			if _, err := st.IngestMessages(ctx, batch); err != nil {
				return res, fmt.Errorf("store items: %w", err)
			}
			batch = batch[:0]
		}
	}
	progress("stored %d items; %d agents pull and accept offers", o.Items, o.Agents)

	offers := make([]chan int64, o.Agents)
	byID := map[int64]int{}
	for i, a := range agents {
		offers[i] = make(chan int64, 16)
		byID[a.ID] = i
	}
	var decMu sync.Mutex
	var decisions []time.Duration
	engine := routing.NewEngine(routing.EngineOptions{Store: st, Logger: o.Logger, Tick: time.Second,
		OnDecision: func(d time.Duration) {
			decMu.Lock()
			decisions = append(decisions, d)
			decMu.Unlock()
		},
		IdleTimeout: -1, Ramp: time.Millisecond, OnOffer: func(item, agent int64) {
			select {
			case offers[byID[agent]] <- item:
			default:
			}
		}})
	if err := engine.Load(ctx); err != nil {
		return res, err
	}
	// Every other agent takes pushed offers (available); the rest pull.
	for i, a := range agents {
		if i%2 == 0 {
			if err := st.SetAgentStatus(ctx, a.ID, store.AgentAvailable, time.Now()); err != nil {
				return res, err
			}
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go engine.Run(rctx)

	var mu sync.Mutex
	got := map[int64]int64{}
	var lat []time.Duration // pulls and accepts, from the agent's request to the committed assignment
	var assigned, doubles atomic.Int64
	record := func(item, agent int64, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		lat = append(lat, d)
		if prev, ok := got[item]; ok && prev != agent {
			doubles.Add(1)
		}
		got[item] = agent
		assigned.Add(1)
	}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return res, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	began := time.Now()
	deadline := began.Add(2 * time.Minute)
	var wg sync.WaitGroup
	var idle atomic.Int64
	for i, a := range agents {
		rng2 := rand.New(rand.NewPCG(uint64(i), 7))
		wg.Go(func() {
			pushed := i%2 == 0
			misses := 0
			for rctx.Err() == nil && time.Now().Before(deadline) && assigned.Load() < int64(o.Items) {
				if pushed {
					select {
					case item := <-offers[i]:
						t := time.Now()
						if err := engine.Accept(rctx, a, item); err == nil {
							record(item, a.ID, time.Since(t))
						}
					case <-time.After(200 * time.Millisecond):
						misses++
					}
				} else {
					t := time.Now()
					id, ok, err := engine.PullID(rctx, a)
					d := time.Since(t)
					if err == nil && ok {
						record(id, a.ID, d)
						// The agent reads the item before asking for the next one.
						time.Sleep(thinkTime(rng2))
						continue
					}
					misses++
					time.Sleep(20 * time.Millisecond)
				}
				if misses > 25 {
					idle.Add(1)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	cancel()
	n, err := st.CountWorkItems(ctx, store.WorkItemFilter{State: store.StateAssigned})
	if err != nil {
		return res, err
	}
	res.Assigned = int(assigned.Load())
	res.PerSecond = float64(res.Assigned) / elapsed.Seconds()
	res.DoubleAssigned = int(doubles.Load())
	if n != len(got) {
		res.DoubleAssigned += abs(n - len(got))
	}
	res.P99AssignMS = p99ms(lat)
	decMu.Lock()
	res.P99DecisionMS = p99ms(decisions)
	decMu.Unlock()
	progress("%s: %d assigned in %s (%d agents ran out of items they may take)", o.Store, res.Assigned, elapsed.Round(time.Millisecond), idle.Load())
	return res, nil
}

// thinkTime is how long a benchmark agent takes between two pulls: 20 to 60 ms, so that
// the 500 pulling agents could ask for over 10,000 items a second, more than the engine
// gives out (agents do not pull back to back; the pushed half answer offers at once).
func thinkTime(r *rand.Rand) time.Duration {
	return 20*time.Millisecond + time.Duration(r.IntN(40))*time.Millisecond
}

// p99ms is the 99th percentile of ds in milliseconds (0 for none).
func p99ms(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return float64(ds[len(ds)*99/100].Microseconds()) / 1000
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// openBenchStore opens a throwaway store of the kind asked for.
func openBenchStore(ctx context.Context, o RoutingOptions) (store.Store, func(), error) {
	switch o.Store {
	case "sqlite":
		dir, err := os.MkdirTemp("", "postroom-bench-routing-")
		if err != nil {
			return nil, nil, err
		}
		st, err := sqlite.Open(ctx, filepath.Join(dir, "postroom.db"))
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		return st, func() { st.Close(); os.RemoveAll(dir) }, nil
	case "postgres":
		base := o.PostgresURL
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return nil, nil, fmt.Errorf("PostgreSQL at %s: %w", base, err)
		}
		defer conn.Close(ctx)
		var b [6]byte
		_, _ = crand.Read(b[:])
		name := "postroom_bench_" + hex.EncodeToString(b[:])
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return nil, nil, fmt.Errorf("create database %s: %w", name, err)
		}
		cfg, err := pgx.ParseConfig(base)
		if err != nil {
			return nil, nil, err
		}
		url := fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, name)
		st, err := postgres.Open(ctx, url)
		drop := func() {
			c, err := pgx.Connect(context.Background(), base)
			if err == nil {
				_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
				c.Close(context.Background())
			}
		}
		if err != nil {
			drop()
			return nil, nil, err
		}
		return st, func() { st.Close(); drop() }, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q: sqlite or postgres", o.Store)
}
