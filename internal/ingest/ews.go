package ingest

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// dialEWS opens the EWS source of mailbox m: Basic sign-in with the password, or the OAuth
// token when the mailbox signs in with OAuth. A mailbox without a host finds its EWS URL by
// autodiscover from its address, once per process (found again when the URL answers 404
// or the mailbox moves). Stored messages are skipped (dedup after an invalid sync state),
// and a page of changes without a new message saves its sync state.
func (r *Runner) dialEWS(ctx context.Context, m store.Mailbox, cursor string, password vault.Secret, token connector.TokenFunc, log *slog.Logger) (connector.Source, error) {
	cfg := ews.Config{
		URL: mailbox.EWSURL(m), Mailbox: m.Address, Login: m.Login, Password: password,
		Folder: m.Folder, Cursor: cursor, AfterAction: m.AfterAction, MoveFolder: m.MoveFolder, MaxSizeBytes: maxSize(m),
		HTTPClient: r.ewsHTTPClient(), Logger: log,
	}
	if m.Auth != store.AuthPassword {
		cfg.Token = token
	}
	if cfg.URL == "" {
		key := mailbox.EWSDiscoverKey(m)
		u, err := r.ewsURLs.Resolve(ctx, key, ews.DiscoverConfig{Address: m.Address, Host: m.AutodiscoverHost, Login: m.Login, Password: password,
			Token: cfg.Token, HTTPClient: cfg.HTTPClient, Logger: log})
		if err != nil {
			return nil, err
		}
		cfg.URL = u
		cfg.Stale = func() { r.ewsURLs.Forget(key) }
	}
	cfg.Skip = func(sourceID string) bool {
		_, err := r.opts.Store.MessageBySource(ctx, m.ID, sourceID)
		return err == nil
	}
	fence := fenceOf(ctx)
	cfg.SaveCursor = func(ctx context.Context, c string) error {
		return r.opts.Store.SetCursor(ctx, store.Cursor{MailboxID: m.ID, Value: c, Fence: fence})
	}
	return ews.Open(ctx, cfg)
}

// ewsHTTPClient is the HTTP client of EWS and autodiscover: Options.HTTPClient, else one
// that trusts Options.RootCAs (nil: the system's roots).
func (r *Runner) ewsHTTPClient() *http.Client {
	r.ewsOnce.Do(func() {
		r.ewsClient = r.opts.HTTPClient
		if r.ewsClient == nil && r.opts.RootCAs != nil {
			r.ewsClient = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, IdleConnTimeout: 90 * time.Second,
				TLSClientConfig: &tls.Config{RootCAs: r.opts.RootCAs, MinVersion: tls.VersionTLS12}}}
		}
	})
	return r.ewsClient
}
