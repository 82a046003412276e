package mailbox

import (
	"context"
	"fmt"

	"github.com/postroom/postroom/internal/diag"
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
	return diag.Test(ctx, m, password, &diag.Options{RootCAs: s.RootCAs}), nil
}

// TestInput tests settings that are not saved yet (the form's "Test connection" before
// Save). For an existing mailbox (id != 0) a nil Password uses the stored one. Settings
// that break a rule are reported as a *ValidationError, not tested.
func (s *Service) TestInput(ctx context.Context, id int64, in Input) (diag.Report, error) {
	var password vault.Secret
	stored := false
	if id != 0 {
		old, err := s.store.Mailbox(ctx, id)
		if err != nil {
			return diag.Report{}, fmt.Errorf("mailbox %d: %w", id, err)
		}
		in.Name, in.Direction = old.Name, old.Direction
		if in.Password == nil {
			password, err = s.passwords.Get(ctx, id)
			if err != nil {
				return diag.Report{}, err
			}
			stored = !password.IsZero()
		}
	}
	if in.Password != nil {
		password = *in.Password
	}
	if in.Name == "" {
		in.Name = "test" // not saved: the name rules do not matter here
	}
	m := normalize(in)
	have := secretsAt{password: stored || !password.IsZero(), clientSecret: in.ClientSecret != nil, certificate: in.Certificate != nil}
	if id != 0 {
		old, err := s.store.Mailbox(ctx, id)
		if err != nil {
			return diag.Report{}, fmt.Errorf("mailbox %d: %w", id, err)
		}
		have.clientSecret = have.clientSecret || old.ClientSecretSet
		have.certificate = have.certificate || old.CertificateSet
	}
	if verr := validate(m, have); verr != nil {
		return diag.Report{}, verr
	}
	return diag.Test(ctx, m, password, &diag.Options{RootCAs: s.RootCAs}), nil
}
