// Package vault keeps secrets encrypted at rest (DESIGN.md invariants 3 and 10): mailbox
// passwords, OAuth client secrets and refresh tokens are sealed with AES-256-GCM (NIST SP
// 800-38D) before the store sees them, and travel in memory as Secret, which never prints
// its value.
//
// The 32-byte key comes from the POSTROOM_SECRET_KEY environment variable, else from
// <dataDir>/secret.key, created (mode 0600) on first start. Check stores a sealed known value
// in the settings so that starting with another key fails at once with advice, instead of
// failing later on every mailbox.
//
// Sealed format, version 1: 0x01 || 12-byte random nonce || GCM ciphertext and 16-byte tag,
// with the version byte as additional authenticated data.
//
// Key rotation (rotate.go, `postroom rotate-key`) re-encrypts every sealed value of the
// store under a new key in one transaction (Rotate, through store.Operations.ResealSecrets),
// the key check included, so that the old key stops passing Check; there is one key at a
// time, not a key ring.
//
// Invariants: a key or plaintext is never logged or put in an error message; Open fails with
// ErrWrongKey for any ciphertext that does not authenticate under the key.
package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/postroom/postroom/internal/store"
)

const (
	// KeySize is the AES-256 key length in bytes.
	KeySize = 32

	// version1 marks the sealed format described in the package comment.
	version1 byte = 1

	// nonceSize is the GCM standard nonce length (NIST SP 800-38D §8.2: 96 bits). Random
	// nonces stay safe for up to 2^32 seals under one key, far above the secrets we keep.
	nonceSize = 12

	// checkSetting is the settings key holding the sealed known value for Check.
	checkSetting = "vault.check"

	// checkPlaintext is the known value sealed for Check.
	checkPlaintext = "postroom vault check v1"
)

// ErrWrongKey is returned (wrapped) by Open when the ciphertext does not authenticate: it
// was sealed with another key, or it was altered.
var ErrWrongKey = errors.New("decryption failed: wrong secret key or altered data")

// Vault seals and opens secrets with one AES-256-GCM key. It is safe for concurrent use.
type Vault struct {
	aead cipher.AEAD
}

// New returns a Vault for a 32-byte key.
func New(key []byte) (*Vault, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("vault: the key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return &Vault{aead: aead}, nil
}

// Seal encrypts plaintext: version byte, random nonce, ciphertext with tag.
func (v *Vault) Seal(plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+v.aead.Overhead())
	out[0] = version1
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, fmt.Errorf("vault seal: random nonce: %w", err)
	}
	return v.aead.Seal(out, out[1:1+nonceSize], plaintext, out[:1]), nil
}

// Open decrypts what Seal produced. A ciphertext that does not authenticate gives an error
// wrapping ErrWrongKey.
func (v *Vault) Open(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) == 0 {
		return nil, errors.New("vault open: empty ciphertext")
	}
	if ciphertext[0] != version1 {
		return nil, fmt.Errorf("vault open: unknown format version %d (written by a newer postroom?)", ciphertext[0])
	}
	if len(ciphertext) < 1+nonceSize+v.aead.Overhead() {
		return nil, fmt.Errorf("vault open: ciphertext of %d bytes is too short: %w", len(ciphertext), ErrWrongKey)
	}
	nonce := ciphertext[1 : 1+nonceSize]
	plain, err := v.aead.Open(nil, nonce, ciphertext[1+nonceSize:], ciphertext[:1])
	if err != nil {
		return nil, fmt.Errorf("vault open: %w", ErrWrongKey)
	}
	return plain, nil
}

// Settings is the part of store.Store that Check needs. Setting returns an error wrapping
// store.ErrNotFound when the key is missing.
type Settings interface {
	Setting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
}

// errKeyMismatch is the advice Check gives when the key is not the data's key.
const errKeyMismatch = "the secret key does not match the one this data folder/database was encrypted with: " +
	"set " + EnvKey + " to the original key (or restore the " + KeyFileName + " file of the data folder)"

// Check guards against starting with the wrong key. On first use it stores a sealed known
// value under the setting "vault.check"; afterwards it opens that value and fails, with
// advice, when the key differs. After storing, it reads the value back, so that two nodes
// starting at once with different keys cannot both succeed.
func (v *Vault) Check(ctx context.Context, s Settings) error {
	stored, err := s.Setting(ctx, checkSetting)
	if errors.Is(err, store.ErrNotFound) {
		sealed, err := v.Seal([]byte(checkPlaintext))
		if err != nil {
			return fmt.Errorf("vault check: %w", err)
		}
		if err := s.SetSetting(ctx, checkSetting, base64.StdEncoding.EncodeToString(sealed)); err != nil {
			return fmt.Errorf("vault check: store %s: %w", checkSetting, err)
		}
		stored, err = s.Setting(ctx, checkSetting)
		if err != nil {
			return fmt.Errorf("vault check: read back %s: %w", checkSetting, err)
		}
	} else if err != nil {
		return fmt.Errorf("vault check: read %s: %w", checkSetting, err)
	}

	sealed, err := base64.StdEncoding.DecodeString(stored)
	if err != nil {
		return fmt.Errorf("vault check: setting %s is not base64 (was it edited by hand?): %w", checkSetting, err)
	}
	plain, err := v.Open(sealed)
	if errors.Is(err, ErrWrongKey) || (err == nil && string(plain) != checkPlaintext) {
		return fmt.Errorf("vault check: %s: %w", errKeyMismatch, ErrWrongKey)
	}
	if err != nil {
		return fmt.Errorf("vault check: %w", err)
	}
	return nil
}
