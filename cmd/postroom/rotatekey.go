package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/postroom/postroom/internal/app"
)

// runRotateKey re-encrypts every stored secret under a new key.
func runRotateKey(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("postroom rotate-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs, getenv, false)
	newKeyFile := fs.String("new-key-file", "", "with the key in POSTROOM_SECRET_KEY: the new file (mode 0600) the new key is written to, for you to put in POSTROOM_SECRET_KEY on every node")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: postroom rotate-key [-data DIR] [-new-key-file FILE]\n\nRe-encrypts every stored secret under a new random key in one transaction; the old key stops working.\nStop every postroom serve on the database first: rotate-key refuses while one runs.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, c.logLevel)
	if err != nil {
		return err
	}
	dbURL, err := secretEnv(getenv, envDatabaseURL)
	if err != nil {
		return err
	}
	res, err := app.RotateKey(ctx, c.dataDir, dbURL, getenv, *newKeyFile, log)
	if err != nil {
		return err
	}
	printf(stdout, "re-encrypted %d stored secrets under a new key; the old key no longer opens them\n", res.Resealed)
	if res.OldKeyFile != "" {
		printf(stdout, "new key: %s\nold key kept as %s (mode 0600): keep it only as long as you keep backups made before now, which need it\n", res.KeyFile, res.OldKeyFile)
	} else {
		printf(stdout, "new key written to %s (mode 0600): put its content in POSTROOM_SECRET_KEY on every node before starting them, then delete the file\n", res.KeyFile)
	}
	printf(stdout, "back up the new key now; backups made before the rotation still need the old key\n")
	return nil
}
