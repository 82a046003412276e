package diag

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// ewsTimeout bounds the EWS step: one SyncFolderItems of one change.
const ewsTimeout = 15 * time.Second

// testEWS checks an Exchange Web Services mailbox: the host resolves, then one
// SyncFolderItems of the inbox (MaxChangesReturned 1) proves the sign-in, the access to the
// mailbox and the folder; nothing is changed. Exchange's codes come back named with their
// fix (ErrorAccessDenied, ErrorNonExistentMailbox, ErrorImpersonateUserDenied,
// ErrorServerBusy with its back-off, a 401 with the methods the server offered).
func testEWS(r *run, m store.Mailbox, password vault.Secret) {
	if !r.resolve() {
		return
	}
	u := ewsURL(m)
	hc := r.opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.opts.RootCAs, MinVersion: tls.VersionTLS12}}}
	}
	cfg := ews.Config{URL: u, Mailbox: m.Address, Login: m.Login, Password: password, Folder: m.Folder, HTTPClient: hc}
	if usesOAuth(m) {
		cfg.Token = r.tokenFor
	}
	r.step("Open the mailbox "+m.Address+" over EWS ("+u+")", ewsTimeout, func(ctx context.Context) (string, error) {
		if err := ews.Check(ctx, cfg); err != nil {
			return "", err
		}
		return "signed in as " + m.Login + "; the folder " + cfg.Folder + " can be read", nil
	})
}

// ewsURL is the EWS endpoint of m (as mailbox.EWSURL, which diag cannot import).
func ewsURL(m store.Mailbox) string {
	scheme, def := "https", 443
	if m.Security == securityNone {
		scheme, def = "http", 80
	}
	port := m.Port
	if port == 0 {
		port = def
	}
	host := m.Host
	if port != def {
		host = net.JoinHostPort(m.Host, strconv.Itoa(port))
	}
	return scheme + "://" + host + "/EWS/Exchange.asmx"
}
