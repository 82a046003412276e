package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func newVault(t *testing.T, key []byte) *Vault {
	t.Helper()
	v, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSealOpen(t *testing.T) {
	v := newVault(t, testKey(1))
	for _, plain := range []string{"", "hunter2", strings.Repeat("long refresh token ", 200)} {
		sealed, err := v.Seal([]byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		if plain != "" && bytes.Contains(sealed, []byte(plain)) {
			t.Fatalf("ciphertext contains the plaintext")
		}
		again, _ := v.Seal([]byte(plain))
		if bytes.Equal(sealed, again) {
			t.Errorf("two seals of %q are equal: nonce not random", plain)
		}
		got, err := v.Open(sealed)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if string(got) != plain {
			t.Errorf("Open = %q, want %q", got, plain)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	v := newVault(t, testKey(1))
	sealed, err := v.Seal([]byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	other := newVault(t, testKey(2))
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}

	for name, c := range map[string]struct {
		v          *Vault
		ciphertext []byte
	}{
		"wrong key":        {other, sealed},
		"altered nonce":    {v, flip(1)},
		"altered body":     {v, flip(1 + nonceSize)},
		"altered tag":      {v, flip(len(sealed) - 1)},
		"truncated":        {v, sealed[:len(sealed)-1]},
		"only the version": {v, sealed[:1]},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := c.v.Open(c.ciphertext)
			if !errors.Is(err, ErrWrongKey) {
				t.Errorf("err = %v, want ErrWrongKey", err)
			}
			if got != nil {
				t.Errorf("returned %q", got)
			}
		})
	}

	if _, err := v.Open(flip(0)); err == nil || errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "unknown format version") {
		t.Errorf("altered version: err = %v", err)
	}
	if _, err := New(testKey(1)[:16]); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("New with a 16-byte key: err = %v", err)
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	noEnv := func(string) string { return "" }

	key1, err := LoadKey(dir, noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(key1) != KeySize {
		t.Fatalf("key of %d bytes", len(key1))
	}
	path := filepath.Join(dir, KeyFileName)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %v, want 0600", perm)
	}
	content, _ := os.ReadFile(path)
	if got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(content))); err != nil || !bytes.Equal(got, key1) {
		t.Errorf("key file %q does not hold the key as base64", content)
	}

	key2, err := LoadKey(dir, noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key1, key2) {
		t.Error("second LoadKey returned another key: the file was not reused")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("data folder holds %d entries, want only %s", len(entries), KeyFileName)
	}

	// Concurrent first starts agree on one key.
	dir2 := t.TempDir()
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := LoadKey(dir2, noEnv, nil)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("concurrent LoadKey calls created different keys")
		}
	}

	// A damaged key file is refused with advice, not replaced.
	if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadKey(dir, noEnv, nil)
	if err == nil || !strings.Contains(err.Error(), "is not valid") || !strings.Contains(err.Error(), "base64") || !strings.Contains(err.Error(), "restore the original file") {
		t.Errorf("damaged key file: err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a key\n" {
		t.Error("damaged key file was overwritten")
	}
}

func TestLoadKeyEnv(t *testing.T) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i * 7)
	}
	good := map[string]string{
		"base64":          base64.StdEncoding.EncodeToString(key),
		"base64 unpadded": base64.RawStdEncoding.EncodeToString(key),
		"hex":             hex.EncodeToString(key),
		"hex upper":       strings.ToUpper(hex.EncodeToString(key)),
		"base64 with \\n": base64.StdEncoding.EncodeToString(key) + "\n",
	}
	for name, val := range good {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			got, err := LoadKey(dir, func(k string) string {
				if k == EnvKey {
					return val
				}
				return ""
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, key) {
				t.Errorf("key = %x, want %x", got, key)
			}
			if _, err := os.Stat(filepath.Join(dir, KeyFileName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a key file was created although %s is set", EnvKey)
			}
		})
	}

	bad := map[string]string{
		"too short base64": base64.StdEncoding.EncodeToString(key[:16]),
		"too long hex":     hex.EncodeToString(append(bytes.Clone(key), 1)),
		"not encoded":      "correct horse battery staple",
		"hex with a typo":  "zz" + hex.EncodeToString(key)[2:],
	}
	for name, val := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := LoadKey(t.TempDir(), func(string) string { return val }, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, want := range []string{EnvKey, "32 random bytes", "base64", "hex"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if strings.Contains(msg, val) {
				t.Errorf("error %q repeats the key", msg)
			}
		})
	}
}

// memSettings is an in-memory Settings, as store.Store provides it.
type memSettings struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memSettings) Setting(_ context.Context, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return "", fmt.Errorf("setting %q: %w", key, store.ErrNotFound)
	}
	return v, nil
}

func (s *memSettings) SetSetting(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[key] = value
	return nil
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	settings := &memSettings{}
	v := newVault(t, testKey(1))

	if err := v.Check(ctx, settings); err != nil {
		t.Fatalf("first Check: %v", err)
	}
	if settings.m[checkSetting] == "" {
		t.Fatal("first Check stored nothing")
	}
	if err := newVault(t, testKey(1)).Check(ctx, settings); err != nil {
		t.Fatalf("Check with the same key: %v", err)
	}

	err := newVault(t, testKey(2)).Check(ctx, settings)
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Check with another key: err = %v, want ErrWrongKey", err)
	}
	for _, want := range []string{"the secret key does not match", "set POSTROOM_SECRET_KEY to the original key", "secret.key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	failing := failingSettings{}
	if err := v.Check(ctx, failing); err == nil || !strings.Contains(err.Error(), "database is down") {
		t.Errorf("Check with a failing store: err = %v", err)
	}
}

type failingSettings struct{}

func (failingSettings) Setting(context.Context, string) (string, error) {
	return "", errors.New("database is down")
}
func (failingSettings) SetSetting(context.Context, string, string) error {
	return errors.New("database is down")
}

func TestSecretNeverPrinted(t *testing.T) {
	const value = "hunter2-very-secret"
	s := NewSecret(value)
	if s.Reveal() != value || s.IsZero() {
		t.Fatalf("Reveal = %q, IsZero = %v", s.Reveal(), s.IsZero())
	}
	if z := (Secret{}); !z.IsZero() || z.Reveal() != "" || !NewSecret("").IsZero() {
		t.Error("zero Secret is not empty")
	}

	type Credentials struct {
		Login    string
		Password Secret
		Token    *Secret
	}
	type wrapper struct {
		name  string
		creds Credentials // unexported: fmt cannot call methods on it
		inner Secret
	}
	c := Credentials{Login: "agent@example.com", Password: s, Token: &s}
	w := wrapper{name: "w", creds: c, inner: s}

	var outputs []string
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
		outputs = append(outputs,
			fmt.Sprintf(verb, s), fmt.Sprintf(verb, &s), fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c), fmt.Sprintf(verb, w))
	}
	outputs = append(outputs, fmt.Sprint(s, c, w), fmt.Sprintln(s, c, w), s.String(), s.GoString())

	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"Password":"***"`) {
		t.Errorf("json = %s", j)
	}
	outputs = append(outputs, string(j))
	if txt, _ := s.MarshalText(); string(txt) != "***" {
		t.Errorf("MarshalText = %q", txt)
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("login", "password", s, "creds", c, "ptr", &s, slog.Any("wrapped", w), slog.Group("g", "secret", s))
	}
	outputs = append(outputs, buf.String())
	if !strings.Contains(buf.String(), `"password":"***"`) || !strings.Contains(buf.String(), "password=***") {
		t.Errorf("slog output does not show the mask:\n%s", buf.String())
	}

	hexValue := fmt.Sprintf("%x", value)
	for _, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(strings.ToLower(out), hexValue) {
			t.Errorf("secret leaked in %q", out)
		}
	}

	// A secret can arrive in JSON; it still does not go back out.
	var in struct{ Password Secret }
	if err := json.Unmarshal([]byte(`{"Password":"from-the-api"}`), &in); err != nil {
		t.Fatal(err)
	}
	if in.Password.Reveal() != "from-the-api" {
		t.Errorf("decoded %q", in.Password.Reveal())
	}
	if out, _ := json.Marshal(in); string(out) != `{"Password":"***"}` {
		t.Errorf("re-encoded as %s", out)
	}
}
