package bench

// This file runs several `postroom serve` processes ("nodes") on one PostgreSQL database and
// reads what they did from that database. `postroom bench failover` uses it, and so do the
// multi-node tests of cmd/postroom: it needs no testing.T, so that both can.

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Environment of the nodes. The names are the ones `postroom serve` reads
// (cmd/postroom/config.go and the cluster settings).
const (
	envSecretKey    = "POSTROOM_SECRET_KEY"
	envDatabaseURL  = "POSTROOM_DATABASE_URL"
	envNodeName     = "POSTROOM_NODE_NAME"
	envLeaseSeconds = "POSTROOM_LEASE_SECONDS"
	envAdminPass    = "POSTROOM_ADMIN_PASSWORD"
)

// nodeStartTimeout bounds a node's start until it prints the address it serves on.
const nodeStartTimeout = 60 * time.Second

// servingLine is what `postroom serve` prints once it listens ("... serving http://ADDR (...").
var servingLine = regexp.MustCompile(` serving http://(\S+)`)

// NewSecretKey returns a fresh vault key (base64 of 32 random bytes), the one
// POSTROOM_SECRET_KEY every node of a cluster shares.
func NewSecretKey() string {
	var b [32]byte
	_, _ = crand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// CreateDatabase creates an empty database on the PostgreSQL server of baseURL (a
// maintenance database such as postgres://postgres@127.0.0.1:5432/postgres) and returns
// its URL and a function that drops it.
func CreateDatabase(ctx context.Context, baseURL string) (url string, drop func() error, err error) {
	cfg, err := pgx.ParseConfig(baseURL)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = crand.Read(b[:])
	name := "postroom_bench_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, name), drop, nil
}

// IMAPMailbox is one inbound mailbox for PrepareCluster: a plain-text IMAP login on
// loopback.
type IMAPMailbox struct {
	Name, User, Password string
	Host                 string
	Port                 int
}

// PrepareCluster migrates the database at dbURL, creates the first admin (so that nodes
// starting together do not race to create it) and the enabled inbound mailboxes, their
// passwords sealed with secretKey, and returns the mailboxes as stored. It runs in this
// process, before any node starts.
func PrepareCluster(ctx context.Context, dbURL, secretKey, adminPassword string, boxes []IMAPMailbox) ([]store.Mailbox, error) {
	dir, err := os.MkdirTemp("", "postroom-cluster-setup-")
	if err != nil {
		return nil, fmt.Errorf("create a temporary data folder: %w", err)
	}
	defer os.RemoveAll(dir)
	getenv := func(k string) string {
		if k == envSecretKey {
			return secretKey
		}
		return ""
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.Open(ctx, app.Config{DataDir: dir, DatabaseURL: dbURL, Getenv: getenv, Logger: quiet, Version: "bench"})
	if err != nil {
		return nil, fmt.Errorf("open and migrate the database: %w", err)
	}
	defer a.Close()
	if _, err := a.Auth.CreateUser(ctx, "admin", "Administrator", store.RoleAdmin, adminPassword); err != nil {
		return nil, fmt.Errorf("create the first admin: %w", err)
	}
	out := make([]store.Mailbox, 0, len(boxes))
	for _, b := range boxes {
		m, err := a.EnsureMailbox(ctx, "bench", app.MailboxInput{
			Mailbox: store.Mailbox{
				Name: b.Name, Direction: store.Inbound, Protocol: "imap", Address: b.User,
				Host: b.Host, Port: b.Port, Security: "none", Login: b.User, Folder: benchFolder,
				AfterAction: store.AfterMarkRead, MaxSizeMB: mailboxMaxSizeMB, Enabled: true,
			},
			Password: vault.NewSecret(b.Password),
		})
		if err != nil {
			return nil, fmt.Errorf("add inbound mailbox %s: %w", b.Name, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Cluster is a set of `postroom serve` nodes sharing one PostgreSQL database and one vault
// key, each with its own data folder, log file and loopback HTTP port.
type Cluster struct {
	Nodes []*Node
}

// ClusterOptions configure NewCluster.
type ClusterOptions struct {
	Binary      string // the postroom executable
	Dir         string // data folders and logs go under it
	DatabaseURL string
	SecretKey   string
	// AdminPassword is given as POSTROOM_ADMIN_PASSWORD (PrepareCluster created the admin).
	AdminPassword string
	Nodes         int
	// LeaseSeconds, when above 0, is given as POSTROOM_LEASE_SECONDS; 0 keeps the product's
	// default.
	LeaseSeconds int
	// LogLevel of the nodes; "info" logs one line per ingested message.
	LogLevel string
}

// NewCluster prepares the nodes node1…nodeN; none runs yet.
func NewCluster(o ClusterOptions) (*Cluster, error) {
	base := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POSTROOM_") { // nothing of the caller's own settings
			base = append(base, kv)
		}
	}
	base = append(base, envSecretKey+"="+o.SecretKey, envDatabaseURL+"="+o.DatabaseURL, envAdminPass+"="+o.AdminPassword)
	if o.LeaseSeconds > 0 {
		base = append(base, envLeaseSeconds+"="+strconv.Itoa(o.LeaseSeconds))
	}
	level := o.LogLevel
	if level == "" {
		level = "info"
	}
	c := &Cluster{}
	for i := 1; i <= o.Nodes; i++ {
		name := fmt.Sprintf("node%d", i)
		n := &Node{Name: name, binary: o.Binary, level: level,
			DataDir: filepath.Join(o.Dir, name), LogPath: filepath.Join(o.Dir, name+".log"),
			env: append(append([]string{}, base...), envNodeName+"="+name)}
		if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data folder of %s: %w", name, err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	return c, nil
}

// StartAll starts every node, one after the other, each until it serves.
func (c *Cluster) StartAll(ctx context.Context) error {
	for _, n := range c.Nodes {
		if err := n.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close kills every node still running (SIGCONT first, for a paused one) and waits for it.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		n.Kill()
	}
}

// Running returns the names of the nodes whose process runs (paused ones included).
func (c *Cluster) Running() map[string]bool {
	out := map[string]bool{}
	for _, n := range c.Nodes {
		if n.Running() {
			out[n.Name] = true
		}
	}
	return out
}

// Node is one `postroom serve` process of a Cluster; it can be started again after it
// stopped. Its standard output and error go to LogPath, appended over its runs.
type Node struct {
	Name    string // its POSTROOM_NODE_NAME
	DataDir string
	LogPath string
	Addr    string // the HTTP address of the current run, once it serves

	binary, level string
	env           []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	err     error // Wait's result, set before exited is closed
	logFrom int64 // size of the log when the current run started
	runs    int
}

// Start starts the node and waits until it serves (or exits, or ctx ends).
func (n *Node) Start(ctx context.Context) error {
	if n.Running() {
		return fmt.Errorf("%s already runs", n.Name)
	}
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log of %s: %w", n.Name, err)
	}
	n.runs++
	fmt.Fprintf(f, "==== %s run %d at %s\n", n.Name, n.runs, time.Now().UTC().Format(time.RFC3339Nano))
	st, _ := f.Stat()
	cmd := exec.Command(n.binary, "serve", "-data", n.DataDir, "-listen", "127.0.0.1:0", "-log-level", n.level)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // signals go to the node alone
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited, n.err, n.Addr = cmd, exited, nil, ""
	if st != nil {
		n.logFrom = st.Size()
	}
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(exited)
	}()
	deadline := time.NewTimer(nodeStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := servingLine.FindStringSubmatch(n.RunLog()); m != nil {
			n.mu.Lock()
			n.Addr = m[1]
			n.mu.Unlock()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before serving (%v); log:\n%s", n.Name, n.ExitErr(), tail(n.RunLog(), 30))
		case <-deadline.C:
			n.Kill()
			return fmt.Errorf("%s did not serve within %s; log:\n%s", n.Name, nodeStartTimeout, tail(n.RunLog(), 30))
		case <-ctx.Done():
			n.Kill()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Running reports whether the node's process runs (a paused one does).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Signal sends sig to the node's process group; a node not running is left alone.
func (n *Node) Signal(sig syscall.Signal) error {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil || !n.Running() {
		return fmt.Errorf("%s does not run", n.Name)
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %v to %s: %w", sig, n.Name, err)
	}
	return nil
}

// Kill kills the node with SIGKILL, as a power cut or the OOM killer would, and waits
// until its process is gone.
func (n *Node) Kill() {
	if !n.Running() {
		return
	}
	_ = n.Signal(syscall.SIGKILL)
	_ = n.Signal(syscall.SIGCONT) // a stopped process dies at once anyway; harmless
	n.wait(time.Minute)
}

// Stop sends SIGTERM and waits up to grace for the node to exit; it returns an error when it
// did not (it is then killed) or when it exited with a failure.
func (n *Node) Stop(grace time.Duration) error {
	if err := n.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if !n.wait(grace) {
		n.Kill()
		return fmt.Errorf("%s did not stop within %s of SIGTERM", n.Name, grace)
	}
	if err := n.ExitErr(); err != nil {
		return fmt.Errorf("%s exited with %v after SIGTERM", n.Name, err)
	}
	return nil
}

// Pause stops the node with SIGSTOP (it keeps its connections but runs nothing); Resume
// continues it with SIGCONT.
func (n *Node) Pause() error  { return n.Signal(syscall.SIGSTOP) }
func (n *Node) Resume() error { return n.Signal(syscall.SIGCONT) }

// wait waits up to d for the process to exit; false when it still runs.
func (n *Node) wait(d time.Duration) bool {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited == nil {
		return true
	}
	select {
	case <-exited:
		return true
	case <-time.After(d):
		return false
	}
}

// ExitErr is the last run's exit status (nil: exit code 0, or still running).
func (n *Node) ExitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Log returns the node's whole log, over every run.
func (n *Node) Log() string {
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read the log of %s: %v)", n.Name, err)
	}
	return string(b)
}

// RunLog returns the log of the current (or last) run only.
func (n *Node) RunLog() string {
	n.mu.Lock()
	from := n.logFrom
	n.mu.Unlock()
	l := n.Log()
	if int64(len(l)) < from {
		return ""
	}
	return l[from:]
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// ClusterDB reads the cluster's database: leases, nodes, stored messages and cursors.
type ClusterDB struct {
	pool *pgxpool.Pool
}

// OpenClusterDB connects to the cluster's database.
func OpenClusterDB(ctx context.Context, url string) (*ClusterDB, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster database: %w", err)
	}
	return &ClusterDB{pool: pool}, nil
}

// Close closes the connections.
func (db *ClusterDB) Close() { db.pool.Close() }

// HasLeases reports whether the database has the cluster's lease table (mailbox_leases,
// migration 0018_cluster.sql). Without it every node ingests every mailbox.
func (db *ClusterDB) HasLeases(ctx context.Context) (bool, error) {
	var ok bool
	err := db.pool.QueryRow(ctx, `SELECT to_regclass('mailbox_leases') IS NOT NULL AND to_regclass('cluster_nodes') IS NOT NULL`).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look for the lease table: %w", err)
	}
	return ok, nil
}

// Lease is the lease row of one mailbox.
type Lease struct {
	MailboxID  int64
	NodeID     string // cluster_nodes.id of the holder, "<name>/<instance>"; "" when free
	Node       string // the holder's name
	Generation int64
	Valid      bool // held and expires_at is in the future (by the database's clock)
}

// Leases returns the lease rows by mailbox ID.
func (db *ClusterDB) Leases(ctx context.Context) (map[int64]Lease, error) {
	rows, err := db.pool.Query(ctx, `SELECT l.mailbox_id, l.node_id, coalesce(n.name, split_part(l.node_id, '/', 1)), l.generation,
			l.node_id <> '' AND coalesce(l.expires_at > now(), false)
		FROM mailbox_leases l LEFT JOIN cluster_nodes n ON n.id = l.node_id`)
	if err != nil {
		return nil, fmt.Errorf("read the leases: %w", err)
	}
	out := map[int64]Lease{}
	for rows.Next() {
		var l Lease
		if err := rows.Scan(&l.MailboxID, &l.NodeID, &l.Node, &l.Generation, &l.Valid); err != nil {
			return nil, fmt.Errorf("read the leases: %w", err)
		}
		out[l.MailboxID] = l
	}
	return out, rows.Err()
}

// Instances returns the cluster_nodes.id of each node name's latest start.
func (db *ClusterDB) Instances(ctx context.Context) (map[string]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT ON (name) name, id FROM cluster_nodes ORDER BY name, started_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("read the cluster's nodes: %w", err)
	}
	out := map[string]string{}
	for rows.Next() {
		var name, id string
		if err := rows.Scan(&name, &id); err != nil {
			return nil, fmt.Errorf("read the cluster's nodes: %w", err)
		}
		out[name] = id
	}
	return out, rows.Err()
}

// LiveHolders returns, per mailbox, the name of the node holding a valid lease on it,
// only where that node's process runs and the lease belongs to its current start (not to
// an earlier run that was killed).
func (db *ClusterDB) LiveHolders(ctx context.Context, c *Cluster) (map[int64]Lease, error) {
	ls, err := db.Leases(ctx)
	if err != nil {
		return nil, err
	}
	inst, err := db.Instances(ctx)
	if err != nil {
		return nil, err
	}
	running := c.Running()
	out := map[int64]Lease{}
	for id, l := range ls {
		if l.Valid && running[l.Node] && inst[l.Node] == l.NodeID {
			out[id] = l
		}
	}
	return out, nil
}

// StoredMessages returns how many times each Message-ID (without angle brackets) is stored
// as an inbound message.
func (db *ClusterDB) StoredMessages(ctx context.Context) (map[string]int, error) {
	rows, err := db.pool.Query(ctx, `SELECT message_id, count(*) FROM messages WHERE direction = 'inbound' GROUP BY message_id`)
	if err != nil {
		return nil, fmt.Errorf("count the stored messages: %w", err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count the stored messages: %w", err)
		}
		out[strings.Trim(id, "<> ")] = n
	}
	return out, rows.Err()
}

// Unacknowledged counts the sources of stored messages (a mailbox and UID) not yet
// acknowledged there (\Seen set, or deleted).
func (db *ClusterDB) Unacknowledged(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM message_sources WHERE NOT acked`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unacknowledged messages: %w", err)
	}
	return n, nil
}

// FirstStored returns, per mailbox, when the earliest of the messages ids (Message-IDs
// without angle brackets) was stored (messages.created_at, written by the node that stored
// it; every node runs on this machine's clock).
func (db *ClusterDB) FirstStored(ctx context.Context, ids []string) (map[int64]time.Time, error) {
	rows, err := db.pool.Query(ctx, `SELECT mailbox_id, min(created_at) FROM messages
		WHERE direction = 'inbound' AND trim(both '<> ' from message_id) = ANY($1) GROUP BY mailbox_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("read when messages were stored: %w", err)
	}
	out := map[int64]time.Time{}
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("read when messages were stored: %w", err)
		}
		out[id] = at
	}
	return out, rows.Err()
}

// CursorUIDs returns each mailbox's ingest cursor as the last UID it names ("<uidvalidity>:<uid>").
func (db *ClusterDB) CursorUIDs(ctx context.Context) (map[int64]uint64, error) {
	rows, err := db.pool.Query(ctx, `SELECT mailbox_id, value FROM cursors`)
	if err != nil {
		return nil, fmt.Errorf("read the cursors: %w", err)
	}
	out := map[int64]uint64{}
	for rows.Next() {
		var id int64
		var v string
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("read the cursors: %w", err)
		}
		_, last, ok := strings.Cut(v, ":")
		uid, err := strconv.ParseUint(last, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("cursor %q of mailbox %d: not <uidvalidity>:<uid>", v, id)
		}
		out[id] = uid
	}
	return out, rows.Err()
}

// Connected counts the inbound mailboxes whose status is connected.
func (db *ClusterDB) Connected(ctx context.Context) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM mailboxes WHERE direction = 'inbound' AND status = $1`, store.StatusConnected).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count connected mailboxes: %w", err)
	}
	return n, nil
}

// WorkItems counts the work items.
func (db *ClusterDB) WorkItems(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM work_items`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count work items: %w", err)
	}
	return n, nil
}

// Activity describes the database's other sessions (pg_stat_activity) and the locks they
// hold on mailbox_leases rows, one line each, to show why a lease could not be taken.
func (db *ClusterDB) Activity(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
			coalesce(now() - a.xact_start, interval '0'), left(coalesce(a.query, ''), 120),
			coalesce((SELECT string_agg(DISTINCT l.mode, ',') FROM pg_locks l
				WHERE l.pid = a.pid AND l.relation = to_regclass('mailbox_leases')), '')
		FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
		ORDER BY a.pid`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_activity: %w", err)
	}
	var out []string
	for rows.Next() {
		var pid int
		var app, state, query, locks string
		var xact time.Duration
		if err := rows.Scan(&pid, &app, &state, &xact, &query, &locks); err != nil {
			return nil, fmt.Errorf("read pg_stat_activity: %w", err)
		}
		out = append(out, fmt.Sprintf("pid %d %s: %s, transaction open %s, mailbox_leases locks [%s]: %s", pid, app, state, xact.Round(time.Millisecond), locks, query))
	}
	return out, rows.Err()
}
