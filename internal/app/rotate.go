package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/sso"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Heartbeat of a running node (store.Operations.SetAlive): written at start and every
// AliveEvery, cleared at a graceful stop. rotate-key refuses while any node's heartbeat is
// younger than AliveWindow, so after a kill -9 it waits that long.
const (
	AliveEvery  = 10 * time.Second
	AliveWindow = 3 * AliveEvery
)

// sealedSettings are the settings whose values the vault sealed, besides its own check.
var sealedSettings = []string{sso.SecretSetting}

// heartbeat writes this node's heartbeat until ctx ends. Each beat also checks that the
// key still opens the data: a key rotated meanwhile (which rotate-key refuses while the
// heartbeat is fresh, but a node that started in the same instant could miss) is logged
// as an error with what to do.
func (a *App) heartbeat(ctx context.Context) {
	t := time.NewTicker(AliveEvery)
	defer t.Stop()
	for {
		if err := a.Store.SetAlive(ctx, a.node, time.Now()); err != nil && ctx.Err() == nil {
			a.log.Warn("heartbeat not written; retrying", slog.Any("error", err))
		}
		if err := a.Vault.Check(ctx, a.Store); errors.Is(err, vault.ErrWrongKey) {
			a.log.Error("the secret key of this process no longer opens the data (was postroom rotate-key run?): restart this node with the new key", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RotateResult says what RotateKey did.
type RotateResult struct {
	// Resealed counts the values re-encrypted.
	Resealed int
	// KeyFile is where the new key is; OldKeyFile where the old key file was kept ("" when
	// the old key came from the environment).
	KeyFile, OldKeyFile string
}

// RotateKey re-encrypts every stored secret under a new random key in one transaction,
// refusing while a node's heartbeat is fresh (store.ErrNodesAlive: stop every node first).
// The key comes from the environment (POSTROOM_SECRET_KEY) or the data folder's key file,
// as for serve. With a key file, the new key replaces it and the old one is kept beside it
// as secret.key.old-<time> (0600); with the environment, the new key is written to
// newKeyFile (required then, it must not exist) for the operator to put in the
// environment of every node. The new key is on disk before the transaction commits, so a
// crash cannot lose it: after a crash between the two it is in secret.key.new.
func RotateKey(ctx context.Context, dataDir, databaseURL string, getenv func(string) string, newKeyFile string, log *slog.Logger) (RotateResult, error) {
	if log == nil {
		log = slog.Default()
	}
	fromEnv := strings.TrimSpace(getenv(vault.EnvKey)) != ""
	keyFile := filepath.Join(dataDir, vault.KeyFileName)
	switch {
	case fromEnv && newKeyFile == "":
		return RotateResult{}, fmt.Errorf("the key comes from %s: give -new-key-file FILE, where the new key is written for you to put in %s on every node", vault.EnvKey, vault.EnvKey)
	case !fromEnv && newKeyFile != "":
		return RotateResult{}, fmt.Errorf("-new-key-file is for a key in %s; the key file %s is replaced in place", vault.EnvKey, keyFile)
	}
	if !fromEnv {
		if _, err := os.Stat(keyFile); errors.Is(err, fs.ErrNotExist) {
			return RotateResult{}, fmt.Errorf("no key: %s does not exist and %s is not set; check -data", keyFile, vault.EnvKey)
		}
	}
	if databaseURL == "" {
		if _, err := os.Stat(filepath.Join(dataDir, sqliteFile)); errors.Is(err, fs.ErrNotExist) {
			return RotateResult{}, fmt.Errorf("%w: %s does not exist; check -data", ErrNoDatabase, filepath.Join(dataDir, sqliteFile))
		}
	}
	oldKey, err := vault.LoadKey(dataDir, getenv, log)
	if err != nil {
		return RotateResult{}, err
	}
	from, err := vault.New(oldKey)
	if err != nil {
		return RotateResult{}, err
	}
	st, err := OpenStore(ctx, dataDir, databaseURL)
	if err != nil {
		return RotateResult{}, err
	}
	defer st.Close()
	applied, known, err := st.SchemaVersion(ctx)
	if err != nil {
		return RotateResult{}, err
	}
	if applied != known {
		return RotateResult{}, fmt.Errorf("the database schema is at %d, this binary's at %d: run postroom migrate with the matching version first", applied, known)
	}
	if err := from.Check(ctx, st); err != nil {
		return RotateResult{}, err
	}
	newKey, err := vault.NewKey()
	if err != nil {
		return RotateResult{}, err
	}
	to, err := vault.New(newKey)
	if err != nil {
		return RotateResult{}, err
	}
	staged := newKeyFile
	if !fromEnv {
		staged = keyFile + ".new"
	}
	if err := vault.WriteKeyFile(staged, newKey); err != nil {
		return RotateResult{}, err
	}
	n, err := vault.Rotate(ctx, st, from, to, store.Reseal{Settings: sealedSettings, RefuseAliveSince: time.Now().Add(-AliveWindow)})
	if err != nil {
		os.Remove(staged)
		if errors.Is(err, store.ErrNodesAlive) {
			return RotateResult{}, fmt.Errorf("%w: stop every postroom serve on this database first (a node killed without a stop counts as running for %s after its last heartbeat); nothing was changed", err, AliveWindow)
		}
		return RotateResult{}, fmt.Errorf("%w; nothing was changed", err)
	}
	if err := to.Check(ctx, st); err != nil {
		return RotateResult{}, fmt.Errorf("after the rotation: %w (the new key is in %s)", err, staged)
	}
	res := RotateResult{Resealed: n, KeyFile: staged}
	if !fromEnv {
		old, err := vault.ReplaceKeyFile(dataDir, staged, time.Now())
		if err != nil {
			return RotateResult{}, fmt.Errorf("the secrets are re-encrypted with the new key, but: %w", err)
		}
		res.KeyFile, res.OldKeyFile = keyFile, old
	}
	return res, nil
}
