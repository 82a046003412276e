package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// Inline images of an email are shown inside a sandboxed frame whose origin is opaque, so
// the browser treats the frame's image requests as cross-site and does not send the
// SameSite=Lax session cookie with them. The frame's cid: images therefore point at signed
// URLs, /attachments/{id}?exp=<unix time>&sig=<HMAC-SHA256>, that work without a cookie
// until they expire. The key is a setting in the store, so that every node accepts the
// URLs of every other node.

// attachmentKeySetting names the store setting that holds the signing key (base64url).
const attachmentKeySetting = "web.attachment_url_key"

// attachmentKeyBytes is the size of the HMAC-SHA256 key: 256 bits (RFC 2104 §3 asks for
// at least the hash output length).
const attachmentKeyBytes = 32

// signedURLLifetime is how long a signed attachment URL works: as long as a session, so
// that a page open all day keeps its images.
const signedURLLifetime = auth.SessionLifetime

// attachmentSigner signs and checks attachment URLs. The key is loaded (or created) on
// first use.
type attachmentSigner struct {
	st  store.Store
	mu  sync.Mutex
	key []byte
}

func (s *attachmentSigner) loadKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	v, err := s.st.Setting(ctx, attachmentKeySetting)
	if errors.Is(err, store.ErrNotFound) {
		b := make([]byte, attachmentKeyBytes)
		_, _ = rand.Read(b)
		if err := s.st.SetSetting(ctx, attachmentKeySetting, base64.RawURLEncoding.EncodeToString(b)); err != nil {
			return nil, fmt.Errorf("store attachment url key: %w", err)
		}
		// Read back: if another node created one at the same moment, both use the stored one.
		v, err = s.st.Setting(ctx, attachmentKeySetting)
	}
	if err != nil {
		return nil, fmt.Errorf("read attachment url key: %w", err)
	}
	key, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(key) < attachmentKeyBytes {
		return nil, fmt.Errorf("setting %s is not a %d-byte base64url key: delete it to have a new one made", attachmentKeySetting, attachmentKeyBytes)
	}
	s.key = key
	return key, nil
}

func signature(key []byte, id, exp int64) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "attachment:%d:%d", id, exp)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// urlFunc returns a function giving signed URLs for attachments, valid until now plus
// signedURLLifetime.
func (s *attachmentSigner) urlFunc(ctx context.Context, now time.Time) (func(id int64) string, error) {
	key, err := s.loadKey(ctx)
	if err != nil {
		return nil, err
	}
	exp := now.Add(signedURLLifetime).Unix()
	return func(id int64) string {
		return fmt.Sprintf("/attachments/%d?exp=%d&sig=%s", id, exp, signature(key, id, exp))
	}, nil
}

// valid reports whether the request carries an unexpired signature for attachment id.
func (s *attachmentSigner) valid(ctx context.Context, r *http.Request, id int64, now time.Time) (bool, error) {
	q := r.URL.Query()
	sig := q.Get("sig")
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if sig == "" || err != nil || now.Unix() > exp {
		return false, nil
	}
	key, err := s.loadKey(ctx)
	if err != nil {
		return false, err
	}
	return hmac.Equal([]byte(sig), []byte(signature(key, id, exp))), nil
}
