package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// nodeFile names the file in the data folder that holds this node's name.
const nodeFile = "node-id"

// maxNodeName bounds a node name read from nodeFile.
const maxNodeName = 200

// nodeName returns the name of this node: the host name and a random suffix, made at the
// first start and kept in dataDir/node-id (0600), so that it stays the same across
// restarts of the data folder's process and differs between two hosts of one name.
// Outbox claims carry it: the next process on this node knows its predecessor's claims.
func nodeName(dataDir string) (string, error) {
	path := filepath.Join(dataDir, nodeFile)
	b, err := os.ReadFile(path)
	if err == nil {
		name := strings.TrimSpace(string(b))
		if name == "" || len(name) > maxNodeName || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return "", fmt.Errorf("node name in %s is empty or not one line of text: delete the file, a new name is made at the next start", path)
		}
		return name, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the node name: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := host + "-" + hex.EncodeToString(suffix[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process made it first: use theirs
		return nodeName(dataDir)
	}
	if err != nil {
		return "", fmt.Errorf("create the node name file: %w", err)
	}
	if _, err := f.WriteString(name + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write the node name file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write the node name file: %w", err)
	}
	return name, nil
}
