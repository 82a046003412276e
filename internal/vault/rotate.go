package vault

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// CheckSetting is the settings key of the sealed known value that Check opens.
const CheckSetting = checkSetting

// Resealer rewrites every sealed value of the store in one transaction
// (store.Operations.ResealSecrets).
type Resealer interface {
	ResealSecrets(ctx context.Context, r store.Reseal) (int, error)
}

// Rotate re-encrypts every secret of the store, sealed by from, under to, in one
// transaction: the mailboxes' secrets, second factors, sign-ins in progress, the key check
// (so that from no longer passes Check) and the sealed settings named in r.Settings; r's
// RefuseAliveSince is passed on. A value that from cannot open stops it with nothing
// changed. It returns how many values were rewritten.
func Rotate(ctx context.Context, st Resealer, from, to *Vault, r store.Reseal) (int, error) {
	r.Settings = append([]string{checkSetting}, r.Settings...)
	r.Seal = func(sealed []byte) ([]byte, error) {
		plain, err := from.Open(sealed)
		if err != nil {
			return nil, err
		}
		out, err := to.Seal(plain)
		clear(plain)
		return out, err
	}
	n, err := st.ResealSecrets(ctx, r)
	if err != nil {
		return 0, fmt.Errorf("vault rotate: %w", err)
	}
	return n, nil
}

// NewKey returns a new random key.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

// WriteKeyFile writes key (base64) to the new file path, mode 0600, synced; it refuses a
// path that exists.
func WriteKeyFile(path string, key []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists already: move it away (it may hold a key) and try again", path)
	}
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	serr := f.Sync()
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		os.Remove(path)
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	return nil
}

// ReplaceKeyFile makes newPath the data folder's key file and keeps the old one as
// secret.key.old-<UTC time> (mode 0600), whose path it returns. Both files stay readable
// by their owner only.
func ReplaceKeyFile(dataDir, newPath string, now time.Time) (oldKept string, err error) {
	path := filepath.Join(dataDir, KeyFileName)
	oldKept = filepath.Join(dataDir, KeyFileName+".old-"+now.UTC().Format("20060102T150405Z"))
	if err := os.Link(path, oldKept); err != nil {
		return "", fmt.Errorf("keep the old key file as %s: %w", oldKept, err)
	}
	if err := os.Chmod(oldKept, 0o600); err != nil {
		return "", fmt.Errorf("keep the old key file as %s: %w", oldKept, err)
	}
	if err := os.Rename(newPath, path); err != nil {
		return "", fmt.Errorf("put the new key file in place (it is in %s): %w", newPath, err)
	}
	return oldKept, nil
}
