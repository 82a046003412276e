package privacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/postroom/postroom/internal/store"
)

// maxAddressLen is the longest address (RFC 5321 §4.5.3.1: 64 + 1 + 255).
const maxAddressLen = 320

// ErrBadAddress is returned for an address that is not one; its text is advice.
var ErrBadAddress = errors.New("enter one email address, e.g. kim@example.org (no name, no angle brackets)")

// NormaliseAddress returns the address as erasure compares it (trimmed, lower case), or
// ErrBadAddress.
func NormaliseAddress(address string) (string, error) {
	a := strings.ToLower(strings.TrimSpace(address))
	if a == "" || len(a) > maxAddressLen || strings.ContainsAny(a, " \t\r\n<>,;\"") {
		return "", ErrBadAddress
	}
	p, err := mail.ParseAddress(a)
	if err != nil || p.Address != a || !strings.Contains(a, "@") {
		return "", ErrBadAddress
	}
	return a, nil
}

// AddressHash is the hex SHA-256 of the normalised address: the audit's name for it.
func AddressHash(normalised string) string {
	h := sha256.Sum256([]byte(normalised))
	return hex.EncodeToString(h[:])
}

// AuditObject is the object of an erasure's audit event.
func AuditObject(normalised string) string { return "address-sha256:" + AddressHash(normalised) }

// ErasurePreview counts what Erase would remove for the address.
func ErasurePreview(ctx context.Context, st store.Privacy, address string) (store.ErasureCounts, error) {
	a, err := NormaliseAddress(address)
	if err != nil {
		return store.ErasureCounts{}, err
	}
	c, err := st.ErasureOf(ctx, a)
	if err != nil {
		return c, fmt.Errorf("count the data of the address: %w", err)
	}
	return c, nil
}

// Erase removes one customer's data (see the package documentation) and records the audit
// event "erasure" by actor, in one transaction.
func Erase(ctx context.Context, st store.Privacy, actor, address string) (store.ErasureCounts, error) {
	a, err := NormaliseAddress(address)
	if err != nil {
		return store.ErasureCounts{}, err
	}
	c, err := st.EraseAddress(ctx, a, func(c store.ErasureCounts) store.AuditEvent {
		newValue, _ := json.Marshal(c)
		return store.AuditEvent{Actor: actor, Action: "erasure", Object: AuditObject(a), New: string(newValue)}
	})
	if err != nil {
		return c, fmt.Errorf("erase the data of the address: %w", err)
	}
	return c, nil
}
