package diag

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// ewsTimeout bounds the EWS step: one SyncFolderItems of one change. autodiscoverTimeout
// bounds the Autodiscover step: several candidate hosts, some of which may not answer.
const (
	ewsTimeout          = 15 * time.Second
	autodiscoverTimeout = 15 * time.Second
)

// testEWS checks an Exchange Web Services mailbox: the host resolves (or, with no host,
// the "Autodiscover" step finds the EWS URL from the address, or names the failure with
// its fix), then one SyncFolderItems of the inbox (MaxChangesReturned 1) proves the
// sign-in, the access to the mailbox and the folder; nothing is changed. Exchange's codes
// come back named with their fix (ErrorAccessDenied, ErrorNonExistentMailbox,
// ErrorImpersonateUserDenied, ErrorServerBusy with its back-off, a 401 with the methods the
// server offered).
func testEWS(r *run, m store.Mailbox, password vault.Secret) {
	hc := r.opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.opts.RootCAs, MinVersion: tls.VersionTLS12}}}
	}
	cfg := ews.Config{Mailbox: m.Address, Login: m.Login, Password: password, Folder: m.Folder, HTTPClient: hc}
	if usesOAuth(m) {
		cfg.Token = r.tokenFor
	}
	if m.Host != "" {
		if !r.resolve() {
			return
		}
		cfg.URL = ewsURL(m)
	} else if !r.step(autodiscoverStep(m), autodiscoverTimeout, func(ctx context.Context) (string, error) {
		d, err := ews.Discover(ctx, ews.DiscoverConfig{Address: m.Address, Host: m.AutodiscoverHost, Login: m.Login, Password: password,
			Token: cfg.Token, HTTPClient: hc})
		if err != nil {
			return "", err
		}
		cfg.URL = d.URL
		detail := d.URL + " (answered by " + d.Endpoint
		if d.Hops > 0 {
			detail += fmt.Sprintf(" after %d redirects", d.Hops)
		}
		if !strings.EqualFold(d.Address, m.Address) {
			detail += ", for " + d.Address
		}
		return detail + ")", nil
	}) {
		return
	}
	u := cfg.URL
	r.step("Open the mailbox "+m.Address+" over EWS ("+u+")", ewsTimeout, func(ctx context.Context) (string, error) {
		if err := ews.Check(ctx, cfg); err != nil {
			return "", err
		}
		return "signed in as " + m.Login + "; the folder " + cfg.Folder + " can be read", nil
	})
}

// autodiscoverStep names the autodiscover step of m, with the host asked when an
// administrator named one.
func autodiscoverStep(m store.Mailbox) string {
	if m.AutodiscoverHost != "" {
		return "Autodiscover the EWS URL of " + m.Address + " at " + m.AutodiscoverHost
	}
	return "Autodiscover the EWS URL of " + m.Address
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
