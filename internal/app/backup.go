package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/vault"
)

// sqliteMagic is how every SQLite database file starts.
const sqliteMagic = "SQLite format 3\x00"

// PostgresBackupAdvice is what the backup and restore commands say on PostgreSQL, whose own
// tools make consistent online copies (README, Backup and restore).
const PostgresBackupAdvice = "with PostgreSQL, back up with pg_dump and restore with pg_restore: " +
	"pg_dump --format=custom --file=postroom.dump \"$POSTROOM_DATABASE_URL\", then " +
	"pg_restore --exit-on-error --no-owner --dbname=\"$NEW_DATABASE_URL\" postroom.dump into an empty database"

// Backup writes a consistent copy of the SQLite database of dataDir to the new file path
// (mode 0600) while postroom serve may run: SQLite's VACUUM INTO reads the database as of
// one commit without holding up the server's writers. It refuses to overwrite path. The
// secret key is not in the copy.
func Backup(ctx context.Context, dataDir, databaseURL, path string) error {
	if databaseURL != "" {
		return errors.New(PostgresBackupAdvice)
	}
	db := filepath.Join(dataDir, sqliteFile)
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s does not exist; check -data", ErrNoDatabase, db)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("backup file %s: %w", path, err)
	}
	// Created empty and private first: VACUUM INTO fills an empty file and keeps its mode.
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists already: choose a new file name (a backup never overwrites a file)", path)
	}
	if err != nil {
		return fmt.Errorf("create the backup file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create the backup file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.Remove(abs)
		}
	}()
	st, err := OpenStore(ctx, dataDir, "")
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Backup(ctx, abs); err != nil {
		return err
	}
	if err := os.Chmod(abs, 0o600); err != nil {
		return fmt.Errorf("make the backup readable by its owner only: %w", err)
	}
	done = true
	return nil
}

// KeyReminder is what the backup command prints after the copy: the key is elsewhere.
func KeyReminder(dataDir string) string {
	return fmt.Sprintf("The secret key is NOT in this copy: back up %s (or the value of %s) separately and keep it apart from the copy; "+
		"without it the mailbox passwords, client secrets and second factors in the copy cannot be read.",
		filepath.Join(dataDir, vault.KeyFileName), vault.EnvKey)
}

// Restore copies the backup file into dataDir as its database. dataDir must hold no
// database; the file must be a postroom SQLite database whose schema this binary knows
// (older ones are migrated at the next start). When the key is at hand (getenv's
// POSTROOM_SECRET_KEY or dataDir's key file) it must open the copy's secrets. It returns
// the copy's schema version and the one this binary knows.
func Restore(ctx context.Context, dataDir, databaseURL, path string, getenv func(string) string) (applied, known int, err error) {
	if databaseURL != "" {
		return 0, 0, errors.New(PostgresBackupAdvice)
	}
	db := filepath.Join(dataDir, sqliteFile)
	for _, p := range []string{db, db + "-wal"} {
		if _, err := os.Stat(p); err == nil {
			return 0, 0, fmt.Errorf("%s exists: restore only into a data folder without a database (a new folder, or move the old database away first)", p)
		}
	}
	src, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("open the backup: %w", err)
	}
	defer src.Close()
	head := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(src, head); err != nil || !bytes.Equal(head, []byte(sqliteMagic)) {
		return 0, 0, fmt.Errorf("%s is not a SQLite database, so not a postroom backup", path)
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return 0, 0, fmt.Errorf("read the backup: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return 0, 0, fmt.Errorf("create data folder %s: %w", dataDir, err)
	}
	tmp := db + ".restoring"
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		os.Remove(p) // what an interrupted restore left
	}
	defer func() {
		for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
			os.Remove(p)
		}
	}()
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, 0, fmt.Errorf("restore: %w", err)
	}
	_, cerr := io.Copy(dst, src)
	serr := dst.Sync()
	if err := errors.Join(cerr, serr, dst.Close()); err != nil {
		return 0, 0, fmt.Errorf("restore: copy the backup: %w", err)
	}
	applied, known, err = checkRestored(ctx, tmp, dataDir, getenv)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := os.Stat(tmp + "-wal"); err == nil {
		return 0, 0, errors.New("restore: the database's log was not folded back in; try again")
	}
	if err := os.Link(tmp, db); err != nil {
		return 0, 0, fmt.Errorf("restore: put the database in place: %w", err)
	}
	return applied, known, nil
}

// checkRestored opens the copied database and checks its schema and, when the key is at
// hand, the key.
func checkRestored(ctx context.Context, path, dataDir string, getenv func(string) string) (applied, known int, err error) {
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	applied, known, err = st.SchemaVersion(ctx)
	if err != nil || applied == 0 {
		return 0, 0, errors.New("not a postroom database (it has no postroom schema)")
	}
	if applied > known {
		return 0, 0, fmt.Errorf("made by a newer postroom (schema %d; this binary knows up to %d): restore it with that version or a later one", applied, known)
	}
	_, keyFileErr := os.Stat(filepath.Join(dataDir, vault.KeyFileName))
	if getenv(vault.EnvKey) == "" && keyFileErr != nil {
		return applied, known, nil // the key comes later; the first start checks it
	}
	key, err := vault.LoadKey(dataDir, getenv, nil)
	if err != nil {
		return 0, 0, err
	}
	v, err := vault.New(key)
	if err != nil {
		return 0, 0, err
	}
	if _, err := st.Setting(ctx, "vault.check"); err == nil {
		if err := v.Check(ctx, st); err != nil {
			return 0, 0, err
		}
	}
	return applied, known, nil
}
