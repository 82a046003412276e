package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/postroom/postroom/internal/app"
)

// runMigrate applies the schema to the configured database and exits.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("postroom migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs, getenv, false)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dbURL, err := secretEnv(getenv, envDatabaseURL)
	if err != nil {
		return err
	}
	if dbURL == "" {
		if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
			return fmt.Errorf("create data folder %s: %w", c.dataDir, err)
		}
	}
	st, err := app.OpenStore(ctx, c.dataDir, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	printf(stdout, "schema up to date (%s)\n", databaseKind(dbURL))
	return nil
}
