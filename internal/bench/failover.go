package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// Failover defaults: the figures.
const (
	// failoverSettle bounds the wait until every mailbox is connected (and, with leases,
	// held by a running node) before mail starts arriving.
	failoverSettle = 90 * time.Second
	// failoverLeasePoll is how often the leases are read after the kill.
	failoverLeasePoll = 50 * time.Millisecond
	// failoverAppendWorkers append to that many mailboxes at a time (one doveadm each).
	failoverAppendWorkers = 4
	// failoverStopGrace is how long a node may take to stop on SIGTERM at the end.
	failoverStopGrace = 30 * time.Second
)

// FailoverOptions configure Failover.
type FailoverOptions struct {
	Binary      string // the postroom executable the nodes run (os.Executable for the CLI)
	PostgresURL string // a maintenance database of the server a throwaway database is made on
	Nodes       int
	Mailboxes   int
	Messages    int // in all, spread evenly over the mailboxes
	Size        int // about how many bytes each message has
	// LeaseSeconds is given to the nodes as POSTROOM_LEASE_SECONDS; 0 keeps the default.
	LeaseSeconds int
	// Rounds is how many times mail is delivered to every mailbox, at least RoundEvery
	// apart; the victim is killed after half of them.
	Rounds     int
	RoundEvery time.Duration
	// KeepDir keeps the nodes' data folders and logs (the path is printed).
	KeepDir  bool
	Progress io.Writer
}

// FailoverResult is what Failover measured.
type FailoverResult struct {
	Nodes, Mailboxes, Messages int
	LeaseSeconds               int // 0: the product's default
	// Leases is true when the database has the lease table: each mailbox has one holder.
	// Without it every node ingests every mailbox.
	Leases bool
	Victim string // the node killed
	Held   int    // mailboxes it held at the kill (all of them without leases)
	// LeaseMoved is from the kill until every mailbox the victim held is leased to a
	// running node (0 without leases); Takeover is until, in addition, each of them has
	// stored a message that arrived after the kill. Negative: not seen.
	LeaseMoved, Takeover time.Duration
	// Delivered is from the kill until the first mail after it was delivered to every one
	// of the mailboxes it held (the takeover figure cannot be shorter).
	Delivered        time.Duration
	Lost, Duplicated int
	Unacknowledged   int  // stored but not acknowledged at Dovecot at the end
	Stalled          bool // nothing moved for stallTimeout before everything was stored
	Total            time.Duration
	Dir              string // where the nodes' data folders and logs are, with KeepDir
}

// Line is the machine-readable last line of `postroom bench failover`.
func (r FailoverResult) Line() string {
	return fmt.Sprintf("nodes=%d mailboxes=%d messages=%d lost=%d duplicated=%d takeover_s=%s",
		r.Nodes, r.Mailboxes, r.Messages, r.Lost, r.Duplicated, seconds(r.Takeover))
}

// Report is the human-readable account of the run.
func (r FailoverResult) Report(w io.Writer) {
	lease := "the product's default"
	if r.LeaseSeconds > 0 {
		lease = fmt.Sprintf("%d s", r.LeaseSeconds)
	}
	fmt.Fprintf(w, "cluster:   %d nodes on one PostgreSQL, lease time %s\n", r.Nodes, lease)
	if r.Leases {
		fmt.Fprintf(w, "kill:      %s (SIGKILL) held %d of %d mailboxes\n", r.Victim, r.Held, r.Mailboxes)
		fmt.Fprintf(w, "leases:    every one of them leased to a running node %s s after the kill\n", seconds(r.LeaseMoved))
		fmt.Fprintf(w, "takeover:  %s s: each of them leased to a running node and a message that arrived after the kill stored (the mail was delivered to them within %s s of the kill)\n", seconds(r.Takeover), seconds(r.Delivered))
	} else {
		fmt.Fprintf(w, "kill:      %s (SIGKILL); no mailbox_leases table: every node ingests every mailbox\n", r.Victim)
		fmt.Fprintf(w, "takeover:  %s s: until every mailbox stored a message that arrived after the kill\n", seconds(r.Takeover))
	}
	fmt.Fprintf(w, "messages:  %d to %d mailboxes in %s; lost=%d duplicated=%d, %d not acknowledged at the server\n",
		r.Messages, r.Mailboxes, r.Total.Round(time.Millisecond), r.Lost, r.Duplicated, r.Unacknowledged)
	if r.Stalled {
		fmt.Fprintf(w, "STALLED:   nothing was stored or acknowledged for %s before every message was\n", stallTimeout)
	}
	if r.Dir != "" {
		fmt.Fprintf(w, "logs:      %s (node*.log, data folders node*/)\n", r.Dir)
	}
}

func seconds(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64)
}

// Failover runs `postroom bench failover`: opts.Nodes `postroom serve` processes on one
// fresh PostgreSQL database ingest opts.Mailboxes IMAP mailboxes of one Dovecot while
// opts.Messages arrive; after half of them the node in the middle is killed with SIGKILL.
// It measures the takeover and counts, from the store, what was lost or stored twice.
func Failover(ctx context.Context, opts FailoverOptions) (FailoverResult, error) {
	res := FailoverResult{Nodes: opts.Nodes, Mailboxes: opts.Mailboxes, Messages: opts.Messages, LeaseSeconds: opts.LeaseSeconds,
		LeaseMoved: -1, Takeover: -1}
	if opts.Nodes < 2 || opts.Mailboxes < 1 || opts.Messages < opts.Mailboxes || opts.Size < 1 {
		return res, errors.New("need at least 2 nodes, 1 mailbox, a message per mailbox and a size of 1 byte")
	}
	if opts.Rounds < 2 {
		opts.Rounds = 2
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	start := time.Now()

	users := make([]string, opts.Mailboxes)
	for i := range users {
		users[i] = fmt.Sprintf("failover%03d@example.test", i)
	}
	s, err := startServer(users, false)
	if err != nil {
		return res, err
	}
	defer s.stop()
	dbURL, drop, err := CreateDatabase(ctx, opts.PostgresURL)
	if err != nil {
		return res, err
	}
	defer drop()
	host, port, _ := s.addr()
	boxes := make([]IMAPMailbox, len(users))
	for i, u := range users {
		boxes[i] = IMAPMailbox{Name: fmt.Sprintf("failover%03d", i), User: u, Password: s.password, Host: host, Port: port}
	}
	key, adminPW := NewSecretKey(), rand.Text()
	mailboxes, err := PrepareCluster(ctx, dbURL, key, adminPW, boxes)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "prepared:  Dovecot on %s with %d users, a fresh PostgreSQL database with %d inbound mailboxes\n", s.d.IMAPAddr, len(users), len(mailboxes))

	dir, err := os.MkdirTemp("", "postroom-bench-failover-")
	if err != nil {
		return res, fmt.Errorf("create a temporary folder: %w", err)
	}
	if opts.KeepDir {
		res.Dir = dir
	} else {
		defer os.RemoveAll(dir)
	}
	c, err := NewCluster(ClusterOptions{Binary: opts.Binary, Dir: dir, DatabaseURL: dbURL, SecretKey: key, AdminPassword: adminPW,
		Nodes: opts.Nodes, LeaseSeconds: opts.LeaseSeconds})
	if err != nil {
		return res, err
	}
	defer c.Close()
	db, err := OpenClusterDB(ctx, dbURL)
	if err != nil {
		return res, err
	}
	defer db.Close()
	if res.Leases, err = db.HasLeases(ctx); err != nil {
		return res, err
	}
	if err := c.StartAll(ctx); err != nil {
		return res, err
	}
	if err := settleCluster(ctx, db, c, len(mailboxes), res.Leases); err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "started:   %d nodes, every mailbox connected%s after %s\n", opts.Nodes,
		map[bool]string{true: " and leased", false: ""}[res.Leases], time.Since(start).Round(time.Millisecond))

	// Message k goes to mailbox k % Mailboxes; each mailbox's share is cut into Rounds.
	gen := newGenerator(uint64(time.Now().UnixNano()), strconv.FormatInt(time.Now().UnixNano(), 36))
	perBox := make([][]int, opts.Mailboxes)
	for k := range opts.Messages {
		perBox[k%opts.Mailboxes] = append(perBox[k%opts.Mailboxes], k)
	}
	victim := c.Nodes[len(c.Nodes)/2]
	res.Victim = victim.Name
	var held map[int64]bool
	var killedAt time.Time
	var afterKill []string // Message-IDs appended after the kill
	var leaseMoved time.Duration = -1
	var leaseWatch sync.WaitGroup
	leaseErr := make(chan error, 1)
	ingestStart := time.Now()
	for r := range opts.Rounds {
		roundStart := time.Now()
		if r == opts.Rounds/2 {
			if held, err = heldBy(ctx, db, victim.Name, mailboxes, res.Leases); err != nil {
				return res, err
			}
			res.Held = len(held)
			killedAt = time.Now()
			victim.Kill()
			fmt.Fprintf(progress, "killed:    %s with SIGKILL after %d of %d rounds of arrivals; it held %d mailboxes\n", victim.Name, r, opts.Rounds, len(held))
			if res.Leases {
				leaseWatch.Go(func() {
					d, err := watchLeases(ctx, db, c, held, killedAt)
					leaseMoved = d
					if err != nil {
						leaseErr <- err
					}
				})
			}
		}
		// In the round of the kill the killed node's mailboxes get their mail first, so that
		// the takeover figure waits for the delivery as little as possible.
		order := make([]int, 0, len(mailboxes))
		for b, m := range mailboxes {
			if held[m.ID] {
				order = append(order, b)
			}
		}
		for b, m := range mailboxes {
			if !held[m.ID] {
				order = append(order, b)
			}
		}
		ids, at, err := appendRound(ctx, s, users, perBox, order, r, opts.Rounds, func(k int) []byte { return gen.message(k, opts.Size) }, gen.messageID)
		if err != nil {
			return res, err
		}
		if r == opts.Rounds/2 {
			for b, m := range mailboxes {
				if held[m.ID] {
					res.Delivered = max(res.Delivered, at[b].Sub(killedAt))
				}
			}
		}
		if !killedAt.IsZero() {
			afterKill = append(afterKill, ids...)
		}
		if wait := opts.RoundEvery - time.Since(roundStart); wait > 0 && r < opts.Rounds-1 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	fmt.Fprintf(progress, "delivered: %d messages in %d rounds over %s\n", opts.Messages, opts.Rounds, time.Since(ingestStart).Round(time.Millisecond))

	stalled, err := waitStored(ctx, db, opts.Messages)
	if err != nil {
		return res, err
	}
	res.Stalled = stalled
	res.Total = time.Since(ingestStart)
	leaseWatch.Wait()
	select {
	case err := <-leaseErr:
		return res, err
	default:
	}
	res.LeaseMoved = leaseMoved

	// Takeover: per held mailbox, when its lease moved (with leases) and when the first
	// message that arrived after the kill was stored; the slowest mailbox counts.
	first, err := db.FirstStored(ctx, afterKill)
	if err != nil {
		return res, err
	}
	res.Takeover = 0
	for id := range held {
		at, ok := first[id]
		if !ok {
			res.Takeover = -1
			break
		}
		res.Takeover = max(res.Takeover, at.Sub(killedAt))
	}
	if res.Leases && (res.LeaseMoved < 0) {
		res.Takeover = -1
	} else if res.Takeover >= 0 {
		res.Takeover = max(res.Takeover, res.LeaseMoved)
	}

	stored, err := db.StoredMessages(ctx)
	if err != nil {
		return res, err
	}
	for k := range opts.Messages {
		switch n := stored[gen.messageID(k)]; {
		case n == 0:
			res.Lost++
		case n > 1:
			res.Duplicated += n - 1
		}
	}
	if res.Unacknowledged, err = db.Unacknowledged(ctx); err != nil {
		return res, err
	}
	for _, n := range c.Nodes {
		if n.Running() {
			if err := n.Stop(failoverStopGrace); err != nil {
				fmt.Fprintf(progress, "stop:      %v\n", err)
			}
		}
	}
	return res, nil
}

// settleCluster waits until every inbound mailbox is connected and, with leases, each has
// a valid lease held by a running node.
func settleCluster(ctx context.Context, db *ClusterDB, c *Cluster, n int, leases bool) error {
	deadline := time.Now().Add(failoverSettle)
	state := ""
	for {
		connected, err := db.Connected(ctx)
		if err != nil {
			return err
		}
		held := n
		if leases {
			live, err := db.LiveHolders(ctx, c)
			if err != nil {
				return err
			}
			held = len(live)
		}
		if connected == n && held == n {
			return nil
		}
		state = fmt.Sprintf("%d of %d connected, %d leased to a running node", connected, n, held)
		if time.Now().After(deadline) {
			return fmt.Errorf("the nodes did not take up every mailbox within %s: %s", failoverSettle, state)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// heldBy returns the mailboxes the node holds (by lease), or every mailbox without leases.
func heldBy(ctx context.Context, db *ClusterDB, node string, mailboxes []store.Mailbox, leases bool) (map[int64]bool, error) {
	out := map[int64]bool{}
	if !leases {
		for _, m := range mailboxes {
			out[m.ID] = true
		}
		return out, nil
	}
	ls, err := db.Leases(ctx)
	if err != nil {
		return nil, err
	}
	for id, l := range ls {
		if l.Node == node && l.Valid {
			out[id] = true
		}
	}
	return out, nil
}

// watchLeases reads the leases every failoverLeasePoll until each mailbox of held is leased
// to a running node, and returns how long after since that took (-1: not within
// stallTimeout).
func watchLeases(ctx context.Context, db *ClusterDB, c *Cluster, held map[int64]bool, since time.Time) (time.Duration, error) {
	deadline := since.Add(stallTimeout)
	for {
		live, err := db.LiveHolders(ctx, c)
		if err != nil {
			return -1, err
		}
		moved := 0
		for id := range held {
			if _, ok := live[id]; ok {
				moved++
			}
		}
		if moved == len(held) {
			return time.Since(since), nil
		}
		if time.Now().After(deadline) {
			return -1, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(failoverLeasePoll):
		}
	}
}

// appendRound appends round r of rounds of each mailbox's messages (its share cut in
// rounds parts) to the users' INBOXes, failoverAppendWorkers mailboxes at a time in the
// order given (indexes of users), and returns their Message-IDs.
func appendRound(ctx context.Context, s *server, users []string, perBox [][]int, order []int, r, rounds int, msg func(int) []byte, id func(int) string) ([]string, map[int]time.Time, error) {
	var mu sync.Mutex
	var ids []string
	at := map[int]time.Time{}
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	for range failoverAppendWorkers {
		wg.Go(func() {
			for b := range next {
				share := perBox[b]
				part := share[len(share)*r/rounds : len(share)*(r+1)/rounds]
				if len(part) == 0 {
					continue
				}
				raws := make([][]byte, len(part))
				for i, k := range part {
					raws[i] = msg(k)
				}
				actx, cancel := context.WithTimeout(ctx, doveadmTimeout)
				err := s.d.AppendManyContext(actx, users[b], benchFolder, raws)
				cancel()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("deliver to %s: %w", users[b], err)
				}
				for _, k := range part {
					ids = append(ids, id(k))
				}
				at[b] = time.Now()
				mu.Unlock()
			}
		})
	}
	for _, b := range order {
		next <- b
	}
	close(next)
	wg.Wait()
	return ids, at, firstErr
}

// waitStored waits until want distinct messages are stored and none waits for its
// acknowledgement, or nothing moved for stallTimeout (stalled).
func waitStored(ctx context.Context, db *ClusterDB, want int) (stalled bool, err error) {
	last, lastUnacked, lastMove := -1, -1, time.Now()
	for {
		stored, err := db.StoredMessages(ctx)
		if err != nil {
			return false, err
		}
		unacked, err := db.Unacknowledged(ctx)
		if err != nil {
			return false, err
		}
		if len(stored) >= want && unacked == 0 {
			return false, nil
		}
		if len(stored) != last || unacked != lastUnacked {
			last, lastUnacked, lastMove = len(stored), unacked, time.Now()
		} else if time.Since(lastMove) > stallTimeout {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
