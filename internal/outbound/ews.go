package outbound

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/connector/smtp"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// sendEWS sends through Exchange Web Services: CreateItem with the composed MIME as it is
// (threading headers kept) and SendAndSaveCopy, so the copy lands in Sent Items. Exchange
// accepts or refuses the message for all its recipients at once. An attempt whose answer
// was lost is sent again (EWS has no draft id to look up here). A mailbox without a host
// finds its EWS URL by autodiscover from its address, once per process (found again when
// the URL answers 404 or the mailbox moves).
func (s *Sender) sendEWS(ctx context.Context, m store.Mailbox, it store.OutboxItem) (smtp.Result, error) {
	s.ewsOnce.Do(func() {
		s.ewsClient = s.opts.HTTPClient
		if s.ewsClient == nil && s.opts.RootCAs != nil {
			s.ewsClient = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, IdleConnTimeout: 90 * time.Second,
				TLSClientConfig: &tls.Config{RootCAs: s.opts.RootCAs, MinVersion: tls.VersionTLS12}}}
		}
	})
	hc := s.ewsClient
	cfg := ews.Config{URL: mailbox.EWSURL(m), Mailbox: m.Address, Login: m.Login, HTTPClient: hc,
		Logger: s.log.With(slog.String("mailbox", m.Name), slog.Int64("outbox_id", it.ID))}
	if m.Auth == store.AuthPassword {
		password, err := s.opts.Passwords.Get(ctx, m.ID)
		if err != nil {
			return smtp.Result{}, err
		}
		cfg.Password = password
	} else if s.opts.Tokens != nil {
		cfg.Token = s.opts.Tokens(m)
	}
	if cfg.URL == "" {
		key := mailbox.EWSDiscoverKey(m)
		u, err := s.ewsURLs.Resolve(ctx, key, ews.DiscoverConfig{Address: m.Address, Host: m.AutodiscoverHost, Login: m.Login, Password: cfg.Password,
			Token: cfg.Token, HTTPClient: hc, Logger: cfg.Logger})
		if err != nil {
			return smtp.Result{}, err
		}
		cfg.URL = u
		cfg.Stale = func() { s.ewsURLs.Forget(key) }
	}
	sink, err := ews.NewSink(cfg)
	if err != nil {
		return smtp.Result{}, err
	}
	defer sink.Close()
	if err := sink.Send(ctx, it.From, it.Recipients, it.Raw); err != nil {
		return smtp.Result{}, err
	}
	return smtp.Result{Accepted: slices.Clone(it.Recipients), Transactions: 1}, nil
}
