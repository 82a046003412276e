// Package localserver starts real mail servers (Dovecot, and IMAPPeer, an in-memory go-imap
// server for more connections than Dovecot can hold) on loopback for programs: the
// test harness (internal/testenv builds its t.Fatal/t.Cleanup helpers on it) and `postroom
// bench`, which is part of the shipped binary. It must not import testing, nor anything
// that does: `go list -deps ./cmd/postroom` never lists testing (cmd/postroom's
// TestBinaryLinksNoTestHarness checks it).
//
// Each server gets its own temporary directory, its own configuration and free ports on
// 127.0.0.1 only; nothing touches the system configuration or system services. Servers run
// in their own process group and are stopped with SIGTERM to the group, SIGKILL after a
// grace period. Dovecot drops privileges to nobody, so starting it needs root; IMAPPeer
// does not.
package localserver
