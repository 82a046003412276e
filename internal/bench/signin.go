package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
)

// SignInOptions are the knobs of SignIn.
type SignInOptions struct {
	// Phase is how long each flood lasts.
	Phase time.Duration
	// Attackers is the number of concurrent attacking connections.
	Attackers int
	Logger    *slog.Logger
	Progress  io.Writer
}

// SignInPhase is one flood's figures.
type SignInPhase struct {
	Name      string
	Requests  int           // attacker requests answered
	Checked   int           // of them, passwords really compared (401)
	Refused   int           // refused by the throttle (429) or busy (503)
	Duration  time.Duration // the flood's length
	UserTimes []time.Duration
}

// GuessesPerSecond is how many passwords the attacker had checked per second.
func (p SignInPhase) GuessesPerSecond() float64 {
	return float64(p.Checked) / p.Duration.Seconds()
}

// SignInResult is the figures of the sign-in flood benchmark.
type SignInResult struct {
	Baseline []time.Duration // the real user's sign-ins without a flood
	Phases   []SignInPhase   // per account, server from one address, server from many
}

// quantile is percentile of unsorted durations.
func quantile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return percentile(s, p)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// flooded is every real-user sign-in made during a flood.
func (r SignInResult) flooded() []time.Duration {
	var all []time.Duration
	for _, p := range r.Phases {
		all = append(all, p.UserTimes...)
	}
	return all
}

// Line is the machine-readable last line: the attacker's checked guesses per second
// against one account, and against the server (the larger of one address and many),
// and the real user's sign-in time during the floods.
func (r SignInResult) Line() string {
	perAccount, server := 0.0, 0.0
	for i, p := range r.Phases {
		if i == 0 {
			perAccount = p.GuessesPerSecond()
		} else {
			server = max(server, p.GuessesPerSecond())
		}
	}
	all := r.flooded()
	return fmt.Sprintf("attacker_per_account_per_s=%.2f attacker_server_per_s=%.1f user_signin_ms_p50=%.0f user_signin_ms_p99=%.0f",
		perAccount, server, ms(quantile(all, 0.50)), ms(quantile(all, 0.99)))
}

// Report prints the figures for people.
func (r SignInResult) Report(w io.Writer) {
	fmt.Fprintf(w, "no flood:  the user's sign-in p50 %.0f ms, p99 %.0f ms (%d sign-ins)\n",
		ms(quantile(r.Baseline, 0.5)), ms(quantile(r.Baseline, 0.99)), len(r.Baseline))
	for _, p := range r.Phases {
		fmt.Fprintf(w, "%-38s %6d requests in %s: %5d passwords checked (%.2f/s), %6d refused; the user's sign-in p50 %.0f ms, p99 %.0f ms (%d sign-ins)\n",
			p.Name+":", p.Requests, p.Duration.Round(time.Millisecond), p.Checked, p.GuessesPerSecond(), p.Refused,
			ms(quantile(p.UserTimes, 0.5)), ms(quantile(p.UserTimes, 0.99)), len(p.UserTimes))
	}
}

// clientFrom is an HTTP client whose connections leave from the loopback address ip
// (Linux routes all of 127.0.0.0/8 to the loopback interface).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

// signInOnce posts a sign-in and returns the status and the time it took.
func signInOnce(ctx context.Context, c *http.Client, base, user, password string) (int, time.Duration, error) {
	body, _ := json.Marshal(map[string]string{"user": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/session", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// SignIn starts postroom on loopback with SQLite and measures sign-in under attack: a
// flood of wrong passwords against one account, against many accounts from one address,
// and against many accounts from many loopback addresses (127.0.0.10-249), while a real
// user signs in now and then from an address of their own (127.0.0.250).
func SignIn(ctx context.Context, opts SignInOptions) (SignInResult, error) {
	var res SignInResult
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "postroom-bench-signin-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	a, err := app.Open(ctx, app.Config{DataDir: dir, Getenv: func(string) string { return "" }, Logger: log, Version: "bench"})
	if err != nil {
		return res, err
	}
	defer a.Close()
	const userPassword = "a real user's long passphrase"
	for _, u := range []string{"victim", "realuser"} {
		if _, err := a.Auth.CreateUser(ctx, u, "", store.RoleAgent, userPassword); err != nil {
			return res, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() { defer close(served); _ = a.Serve(sctx, ln) }()
	defer func() { cancel(); <-served }()
	base := "http://" + ln.Addr().String()
	user := clientFrom("127.0.0.250")

	// The user alone, for comparison.
	end := time.Now().Add(opts.Phase / 2)
	for time.Now().Before(end) {
		status, d, err := signInOnce(ctx, user, base, "realuser", userPassword)
		if err != nil || status != http.StatusOK {
			return res, fmt.Errorf("the real user's sign-in without a flood: %d %v", status, err)
		}
		res.Baseline = append(res.Baseline, d)
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(progress, "baseline: %d sign-ins\n", len(res.Baseline))

	phases := []struct {
		name    string
		account func(r *rand.Rand) string
		source  func(worker, i int) string
	}{
		{"one account (victim), one address", func(*rand.Rand) string { return "victim" }, func(int, int) string { return "127.0.0.2" }},
		{"many accounts, one address", func(r *rand.Rand) string { return fmt.Sprintf("a%06d", r.IntN(1_000_000)) }, func(int, int) string { return "127.0.0.3" }},
		{"many accounts, 240 addresses", func(r *rand.Rand) string { return fmt.Sprintf("b%06d", r.IntN(1_000_000)) },
			func(w, i int) string { return fmt.Sprintf("127.0.0.%d", 10+(w+i*opts.Attackers)%240) }},
	}
	for _, ph := range phases {
		p, err := flood(ctx, base, user, userPassword, opts, ph.name, ph.account, ph.source)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(progress, "%s: %d requests, %d checked\n", p.Name, p.Requests, p.Checked)
		res.Phases = append(res.Phases, p)
	}
	return res, nil
}

// flood runs one attack for opts.Phase while the real user signs in every 100 ms.
func flood(ctx context.Context, base string, user *http.Client, userPassword string, opts SignInOptions, name string,
	account func(*rand.Rand) string, source func(worker, i int) string) (SignInPhase, error) {
	p := SignInPhase{Name: name}
	ctx, cancel := context.WithTimeout(ctx, opts.Phase)
	defer cancel()
	var requests, checked, refused atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	clients := map[string]*http.Client{}
	clientOf := func(ip string) *http.Client {
		mu.Lock()
		defer mu.Unlock()
		if clients[ip] == nil {
			clients[ip] = clientFrom(ip)
		}
		return clients[ip]
	}
	for w := range opts.Attackers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := 0; ctx.Err() == nil; i++ {
				status, _, err := signInOnce(ctx, clientOf(source(w, i)), base, account(r), fmt.Sprintf("guess-%d-%d", w, i))
				if err != nil {
					continue
				}
				requests.Add(1)
				switch status {
				case http.StatusUnauthorized:
					checked.Add(1)
				case http.StatusTooManyRequests, http.StatusServiceUnavailable:
					refused.Add(1)
				}
			}
		})
	}
	start := time.Now()
	var userErr error
	time.Sleep(200 * time.Millisecond) // let the flood build up
	for ctx.Err() == nil {
		status, d, err := signInOnce(context.WithoutCancel(ctx), user, base, "realuser", userPassword)
		if err != nil || status != http.StatusOK {
			userErr = fmt.Errorf("the real user's sign-in during %q: %d %v", name, status, err)
			break
		}
		p.UserTimes = append(p.UserTimes, d)
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	p.Duration = time.Since(start)
	p.Requests, p.Checked, p.Refused = int(requests.Load()), int(checked.Load()), int(refused.Load())
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	return p, userErr
}
