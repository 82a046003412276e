package mstest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// NewGUID returns a random GUID in Microsoft's lower-case form
// (e.g. "84bd8158-6d4d-4958-8b9f-9d6445542f95").
func NewGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newID returns an opaque id with prefix, shaped like Exchange's (base64, "=" padded, and
// with '-' and '_' so that a client that does not path-escape ids is caught).
func newID(prefix string) string {
	b := make([]byte, 22)
	_, _ = rand.Read(b)
	return prefix + base64.URLEncoding.EncodeToString(b) + "="
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// keyID names the signing key in the JWT header (kid) and the JWKS.
func keyID(pub *rsa.PublicKey) string {
	sum := sha256.Sum256(pub.N.Bytes())
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func queryEscape(s string) string { return url.QueryEscape(s) }

// errNotLoopback refuses a notification URL off the loopback interface.
var errNotLoopback = errors.New("mstest: notification URLs must be on 127.0.0.1 or ::1")

// loopbackClient is the default NotificationClient: it dials loopback addresses only.
func loopbackClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("notification address %q: %w", addr, err)
			}
			ip := net.ParseIP(host)
			if ip == nil || !ip.IsLoopback() {
				return nil, errNotLoopback
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 16,
	}
	return &http.Client{Transport: tr}
}
