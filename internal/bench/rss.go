package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// rssMeter measures this process's peak resident set size over a phase of the benchmark.
//
// Linux keeps the peak as VmHWM in /proc/self/status and resets it when "5" is written to
// /proc/self/clear_refs (proc(5)), so a phase can be measured on its own, without what the
// benchmark itself allocated before it (generating and seeding the messages). Where the
// reset is not possible, the peak is getrusage(RUSAGE_SELF).ru_maxrss, the peak of the whole
// process life, which can only be higher; Method says which one a figure is. Child
// processes (Dovecot, mbsync) never count: both measures are of this process only.
type rssMeter struct {
	Method string // "VmHWM" (reset at the phase start) or "ru_maxrss" (process lifetime)
}

// startPhase returns the heap to the OS and resets the peak, so that what follows is
// measured from the current footprint.
func startPhase() rssMeter {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err == nil {
		if _, ok := procStatusKB("VmHWM"); ok {
			return rssMeter{Method: "VmHWM"}
		}
	}
	return rssMeter{Method: "ru_maxrss"}
}

// Peak is the peak resident set size, in bytes, since startPhase.
func (m rssMeter) Peak() int64 {
	if m.Method == "VmHWM" {
		if kb, ok := procStatusKB("VmHWM"); ok {
			return kb << 10
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) << 10 // kilobytes on Linux (getrusage(2))
}

// currentRSS is the resident set size now, in bytes (0 when unknown).
func currentRSS() int64 {
	kb, _ := procStatusKB("VmRSS")
	return kb << 10
}

// procStatusKB reads one "Name:   123 kB" field of /proc/self/status.
func procStatusKB(field string) (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return v, err == nil
	}
	return 0, false
}

// mb formats bytes as megabytes (2^20) with one decimal.
func mb(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

// raiseOpenFiles makes sure this process may open need files: it raises the soft
// RLIMIT_NOFILE up to the hard limit if it is lower (Go 1.19 and later already do that at
// start on Linux; a program started with a lower soft limit by a wrapper may not have it)
// and says what to do when even the hard limit is too low. It returns the soft limit.
func raiseOpenFiles(need uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open files limit: %w", err)
	}
	if lim.Cur < need && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raise the open files limit to %d: %w", lim.Max, err)
		}
	}
	if lim.Cur < need {
		return lim.Cur, fmt.Errorf("about %d open files are needed (one per mailbox and a few more), and the hard limit is %d: raise it (ulimit -Hn) or watch fewer mailboxes", need, lim.Max)
	}
	return lim.Cur, nil
}
