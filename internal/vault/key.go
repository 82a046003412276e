package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// EnvKey is the environment variable that holds the key (base64 or hex of 32 bytes).
const EnvKey = "POSTROOM_SECRET_KEY"

// KeyFileName is the key file in the data folder, used when EnvKey is not set.
const KeyFileName = "secret.key"

// keyFormats is the advice given for a malformed key.
const keyFormats = "expected 32 random bytes written as base64 (44 characters, e.g. `openssl rand -base64 32`) " +
	"or as hex (64 characters, e.g. `openssl rand -hex 32`)"

// LoadKey returns the 32-byte key: from the environment variable EnvKey when it is set
// (getenv is os.Getenv in production), else from <dataDir>/secret.key, which is created with
// 32 random bytes (base64, mode 0600) when it does not exist. A malformed key is refused with
// an error that says which format is expected; the key itself is never in the error.
// log (slog.Default when nil) hears of a created key file and of a key file others can read.
func LoadKey(dataDir string, getenv func(string) string, log *slog.Logger) ([]byte, error) {
	if log == nil {
		log = slog.Default()
	}
	if v := strings.TrimSpace(getenv(EnvKey)); v != "" {
		key, err := decodeKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid key: %s", EnvKey, keyFormats)
		}
		return key, nil
	}

	path := filepath.Join(dataDir, KeyFileName)
	key, err := readKeyFile(path, log)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyFile(dataDir, path, log)
	}
	return key, err
}

// decodeKey accepts 64 hex characters or standard base64 (padded or not) of 32 bytes.
func decodeKey(s string) ([]byte, error) {
	if len(s) == 2*KeySize {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if key, err := enc.DecodeString(s); err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	return nil, errors.New("malformed key")
}

func readKeyFile(path string, log *slog.Logger) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		log.Warn("the secret key file can be read by other users; restrict it with chmod 600",
			slog.String("path", path), slog.String("mode", info.Mode().Perm().String()))
	}
	key, err := decodeKey(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil, fmt.Errorf("key file %s is not valid: %s; restore the original file (secrets encrypted with it cannot be read without it)", path, keyFormats)
	}
	return key, nil
}

// createKeyFile writes a new random key to a temporary file and links it into place, so
// that a crash never leaves a half-written key and two processes starting at once end up
// with the same key.
func createKeyFile(dataDir, path string, log *slog.Logger) ([]byte, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder %s: %w", dataDir, err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, KeyFileName+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create key file in %s: %w", dataDir, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create key file %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write key file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write key file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write key file %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path, log) // another process created it first
		}
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	log.Info("created a new secret key; back it up, secrets stored with it cannot be read without it",
		slog.String("path", path))
	return key, nil
}
