package mailbox

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Test runs the connection test of a stored mailbox with its stored password.
func (s *Service) Test(ctx context.Context, id int64) (diag.Report, error) {
	m, err := s.store.Mailbox(ctx, id)
	if err != nil {
		return diag.Report{}, fmt.Errorf("mailbox %d: %w", id, err)
	}
	password, err := s.passwords.Get(ctx, id)
	if err != nil {
		return diag.Report{}, err
	}
	opts := &diag.Options{RootCAs: s.RootCAs, HTTPClient: s.HTTPClient}
	if m.Auth != "" && m.Auth != store.AuthPassword && s.Tokens != nil {
		opts.Token = tokenOrError(s.Tokens.For(ctx, m, credential.AudienceOf(m.Protocol)))
	}
	rep := diag.Test(ctx, m, password, opts)
	if rep.SecretExpired {
		s.recordExpiredSecret(ctx, m)
	}
	return rep, nil
}

// recordExpiredSecret notes that Microsoft called m's client secret expired, when the
// recorded expiry date says otherwise, so the mailboxes page, the log and the metric show
// it (ExpiryWarning).
func (s *Service) recordExpiredSecret(ctx context.Context, m store.Mailbox) {
	now := s.now()
	if !m.OAuth.SecretExpiresAt.IsZero() && !m.OAuth.SecretExpiresAt.After(now) {
		return
	}
	m.OAuth.SecretExpiresAt = now
	if err := s.store.UpdateMailbox(ctx, m); err != nil {
		s.log.Warn("record the expired client secret", slog.String("mailbox", m.Name), slog.Any("error", err))
		return
	}
	s.log.Warn("Microsoft says this mailbox's client secret has expired: create a new secret in the app registration (Certificates & secrets) and enter it in the mailbox settings",
		slog.String("mailbox", m.Name))
}

// tokenOrError turns a failure to make a token source into a TokenFunc that reports it, so
// the connection test shows its advice at the sign-in step.
func tokenOrError(fn connector.TokenFunc, err error) connector.TokenFunc {
	if err != nil {
		return func(context.Context, bool) (string, error) { return "", err }
	}
	return fn
}

// TestInput tests settings that are not saved yet (the form's "Test connection" before
// Save). For an existing mailbox (id != 0) a nil Password uses the stored one, and so do
// the other secrets, unless the settings send it somewhere else than the stored settings
// do (the secret destination rule, destination.go): then it must be typed again. Settings
// that break a rule are reported as a *ValidationError, not tested.
func (s *Service) TestInput(ctx context.Context, id int64, in Input) (diag.Report, error) {
	var password vault.Secret
	var old store.Mailbox
	if id != 0 {
		var err error
		if old, err = s.store.Mailbox(ctx, id); err != nil {
			return diag.Report{}, fmt.Errorf("mailbox %d: %w", id, err)
		}
		in.Name, in.Direction = old.Name, old.Direction
	}
	if in.Name == "" {
		in.Name = "test" // not saved: the name rules do not matter here
	}
	m := normalize(in)
	// The secret destination rule: stored secrets the new settings would send elsewhere
	// are not used, and the test is refused when it needs one of them.
	var mv map[string]moved
	var ruleErr *ValidationError
	stored := false
	if id != 0 {
		mv, ruleErr = secretRule(old, m, in, true)
		if _, gone := mv[store.SecretPassword]; in.Password == nil && !gone {
			var err error
			if password, err = s.passwords.Get(ctx, id); err != nil {
				return diag.Report{}, err
			}
			stored = !password.IsZero()
		}
	}
	if in.Password != nil {
		password = *in.Password
	}
	have := secretsAt{password: stored || !password.IsZero(), clientSecret: in.ClientSecret != nil, certificate: in.Certificate != nil}
	if id != 0 {
		_, csGone := mv[store.SecretClientSecret]
		_, certGone := mv[store.SecretCertificate]
		have.clientSecret = have.clientSecret || (old.ClientSecretSet && !csGone)
		have.certificate = have.certificate || (old.CertificateSet && !certGone)
	}
	if verr := mergeErrors(validate(m, have), ruleErr); verr != nil {
		return diag.Report{}, verr
	}
	opts := &diag.Options{RootCAs: s.RootCAs, HTTPClient: s.HTTPClient}
	if m.Auth != store.AuthPassword {
		sec, err := s.typedSecrets(ctx, id, in, password, mv)
		if err != nil {
			return diag.Report{}, err
		}
		m.ID = id
		// A stored refresh token that the test rotates is saved, as in use: the provider may
		// treat the newest as the only current one.
		var save func(context.Context, vault.Secret) error
		if _, gone := mv[store.SecretRefreshToken]; id != 0 && !gone && (in.RefreshToken == nil || in.RefreshToken.Reveal() == "") {
			save = func(ctx context.Context, rt vault.Secret) error {
				return s.passwords.Secrets().Set(ctx, id, store.SecretRefreshToken, rt)
			}
		}
		opts.Token = tokenOrError(credential.TokenFuncFor(m, credential.AudienceOf(m.Protocol), sec, credential.TokensOptions{Logger: s.log}, save))
	}
	return diag.Test(ctx, m, password, opts), nil
}

// typedSecrets are the OAuth secrets of a test of unsaved settings: those typed in, else
// the stored ones of mailbox id (0: none) that did not move (secretRule).
func (s *Service) typedSecrets(ctx context.Context, id int64, in Input, password vault.Secret, mv map[string]moved) (credential.MailboxSecrets, error) {
	sec := credential.MailboxSecrets{Password: password}
	for _, x := range []struct {
		name  string
		typed *vault.Secret
		dst   *vault.Secret
	}{
		{store.SecretClientSecret, in.ClientSecret, &sec.ClientSecret},
		{store.SecretCertificate, in.Certificate, &sec.Certificate},
		{store.SecretRefreshToken, in.RefreshToken, &sec.RefreshToken},
	} {
		switch {
		case x.typed != nil && x.typed.Reveal() != "":
			*x.dst = *x.typed
		case id != 0 && !isMoved(mv, x.name):
			v, err := s.passwords.Secrets().Get(ctx, id, x.name)
			if err != nil {
				return sec, err
			}
			*x.dst = v
		}
	}
	return sec, nil
}
