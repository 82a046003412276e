package testenv

import (
	"os/exec"
	"time"

	"github.com/postroom/postroom/internal/localserver"
)

// The process helpers live in internal/localserver (shared with postroom bench); these
// are the names the harness's servers (smtp-sink, Postfix, Chromium) call them by.

// stopGrace is how long a server gets to exit after SIGTERM before its process group is
// killed.
const stopGrace = localserver.StopGrace

// stopResendInterval is how often SIGTERM is repeated while a server shuts down.
const stopResendInterval = localserver.StopResendInterval

// logTailLines is how many log lines a failed test prints.
const logTailLines = localserver.LogTailLines

// findBinary returns the path of the named program or an error with install advice.
func findBinary(name, advice string) (string, error) { return localserver.FindBinary(name, advice) }

// serverProcess is a server started in its own process group (localserver.Process).
type serverProcess struct{ p *localserver.Process }

// startProcess starts cmd in a new process group and reaps it in the background.
func startProcess(name string, cmd *exec.Cmd) (*serverProcess, error) {
	p, err := localserver.StartProcess(name, cmd)
	if err != nil {
		return nil, err
	}
	return &serverProcess{p}, nil
}

// exited reports whether the process has exited, and with what.
func (p *serverProcess) exited() (bool, error) { return p.p.Exited() }

// stop sends SIGTERM to the process group, waits up to stopGrace, then sends SIGKILL.
func (p *serverProcess) stop() error { return p.p.Stop() }

// nobodyIDs returns the uid of nobody and the gid of nogroup.
func nobodyIDs() (uid, gid int, err error) { return localserver.NobodyIDs() }

// makeWorldTraversableDir creates a temporary directory that nobody can traverse.
func makeWorldTraversableDir(pattern string) (string, error) {
	return localserver.MakeWorldTraversableDir(pattern)
}

// requireRoot explains why the harness needs root.
func requireRoot(server string) error { return localserver.RequireRoot(server) }

// tailFile returns the last n lines of the file at path, or a note on why it cannot.
func tailFile(path string, n int) string { return localserver.TailFile(path, n) }

// waitGreeting retries until addr answers with a line starting with want.
func waitGreeting(addr, want string, deadline time.Time) error {
	return localserver.WaitGreeting(addr, want, deadline)
}
