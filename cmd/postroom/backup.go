package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/postroom/postroom/internal/app"
)

// runBackup copies the SQLite database of the data folder into a new file while serve may
// run, and reminds that the key file is not in it.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("postroom backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs, getenv, false)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: postroom backup [-data DIR] FILE\n\nWrites a consistent copy of the SQLite database to the new file FILE (mode 0600), also while postroom serve runs.\nThe secret key is not in the copy: back it up separately. With PostgreSQL use pg_dump (README, Backup and restore).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	file, err := parseFileFlags(fs, args)
	if err != nil {
		return err
	}
	dbURL, err := secretEnv(getenv, envDatabaseURL)
	if err != nil {
		return err
	}
	if err := app.Backup(ctx, c.dataDir, dbURL, file); err != nil {
		return err
	}
	printf(stdout, "backed up the database of %s to %s\n%s\n", c.dataDir, file, app.KeyReminder(c.dataDir))
	return nil
}

// runRestore puts a backup in place as the database of a data folder that has none.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("postroom restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs, getenv, false)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: postroom restore [-data DIR] FILE\n\nMakes the backup FILE the database of the data folder, which must have none. Put the key file of the backup's data folder in DIR (or set POSTROOM_SECRET_KEY) before starting.\nWith PostgreSQL use pg_restore (README, Backup and restore).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	file, err := parseFileFlags(fs, args)
	if err != nil {
		return err
	}
	dbURL, err := secretEnv(getenv, envDatabaseURL)
	if err != nil {
		return err
	}
	applied, known, err := app.Restore(ctx, c.dataDir, dbURL, file, getenv)
	if err != nil {
		return err
	}
	printf(stdout, "restored %s into %s (schema %d", file, c.dataDir, applied)
	if applied < known {
		printf(stdout, "; the next start migrates it to %d", known)
	}
	printf(stdout, ")\nPut the secret key of the backed-up data folder there as %s (or set %s) before postroom serve.\n", "secret.key", "POSTROOM_SECRET_KEY")
	return nil
}

// parseFileFlags parses the flags and the one FILE argument, which may come before or
// after them.
func parseFileFlags(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", errUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(fs.Output(), "missing the FILE argument")
		fs.Usage()
		return "", errUsage
	}
	file := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return "", err
	}
	return file, nil
}
