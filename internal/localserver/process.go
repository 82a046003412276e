package localserver

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StopGrace is how long a server gets to exit after SIGTERM before its process group is
// killed. testmail.md §2 measured 1.2–1.8 s for Dovecot with SIGTERM to the group.
const StopGrace = 5 * time.Second

// StopResendInterval is how often SIGTERM is repeated while a server shuts down.
const StopResendInterval = 100 * time.Millisecond

// LogTailLines is how many log lines a failed test prints: enough for a start-up or login
// failure, short enough to read.
const LogTailLines = 60

// sbinDirs are searched after $PATH: Debian puts dovecot and smtp-sink in /usr/sbin, which is
// not on a non-login root shell's or a CI runner's PATH everywhere.
var sbinDirs = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// findBinary returns the path of the named program or an error with install advice.
func FindBinary(name, advice string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range sbinDirs {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not installed: %s", name, advice)
}

// Process is a server started in its own process group, so that stopping it also
// stops every child it forked.
type Process struct {
	name     string
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	waitErr  error         // set before done is closed
	stopOnce sync.Once
}

// startProcess starts cmd in a new process group and reaps it in the background.
func StartProcess(name string, cmd *exec.Cmd) (*Process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited, and with what.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process group, waits up to StopGrace, then sends SIGKILL.
// It is idempotent and safe to call after the process has exited by itself.
func (p *Process) Stop() error {
	var err error
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid // Setpgid: the group id is the leader's pid
		if done, _ := p.Exited(); done {
			// The leader is gone, children may not be: make sure of the group.
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		}
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		// A child that was still starting when the signal came can miss it (seen with
		// Dovecot's login processes right after start-up, which kept the master waiting for
		// the whole grace period), so the group is signalled again until the leader exits.
		resend := time.NewTicker(StopResendInterval)
		defer resend.Stop()
		grace := time.NewTimer(StopGrace)
		defer grace.Stop()
	wait:
		for {
			select {
			case <-p.done:
				break wait
			case <-resend.C:
				_ = syscall.Kill(-pgid, syscall.SIGTERM)
			case <-grace.C:
				err = fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.name, StopGrace)
				break wait
			}
		}
		// Children can outlive the leader by a moment; they are ours to clean up.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
		waitGroupGone(pgid)
	})
	return err
}

// waitGroupGone waits, bounded, until no process of the group is left, so that their
// listening sockets are closed when stop returns.
func waitGroupGone(pgid int) {
	deadline := time.Now().Add(StopGrace)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(StopResendInterval / 10)
	}
}

// nobodyIDs returns the uid of nobody and the gid of nogroup, the unprivileged identity the
// servers' mail processes run as (testmail.md gotcha 1).
func NobodyIDs() (uid, gid int, err error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return 0, 0, fmt.Errorf("look up user nobody: %w", err)
	}
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		return 0, 0, fmt.Errorf("look up group nogroup: %w", err)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, fmt.Errorf("uid of nobody %q: %w", u.Uid, err)
	}
	gid, err = strconv.Atoi(g.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("gid of nogroup %q: %w", g.Gid, err)
	}
	return uid, gid, nil
}

// makeWorldTraversableDir creates a temporary directory that nobody can traverse. Go's
// t.TempDir parent is 0700, so it cannot be used (testmail.md gotcha 1). Every parent must
// be traversable too, which this checks instead of silently chmod-ing system directories.
func MakeWorldTraversableDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("chmod temp dir: %w", err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("stat %s: %w", p, err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			os.RemoveAll(dir)
			return "", fmt.Errorf("%s is not traversable by other users (mode %v); unprivileged server processes could not reach %s: set TMPDIR to a directory under /tmp", p, st.Mode().Perm(), dir)
		}
		if p == filepath.Dir(p) {
			return dir, nil
		}
	}
}

// requireRoot explains why the harness needs root instead of failing later with a
// permission error deep in a server log.
func RequireRoot(server string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s harness must run as root: it drops the server's privileges to nobody (the developers' machines and CI run tests as root)", server)
	}
	return nil
}

// tailFile returns the last n lines of the file at path, or a note on why it cannot.
func TailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		lines = append(lines, fmt.Sprintf("(reading %s: %v)", path, err))
	}
	return strings.Join(lines, "\n")
}
