package wakeup

import (
	"crypto/rand"
	"encoding/hex"
)

// randomOrigin is a bus's mark in its notifications: random, so that two buses of one
// process (tests) or two nodes of one name are told apart.
func randomOrigin() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
