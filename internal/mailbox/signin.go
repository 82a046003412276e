package mailbox

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// SetSignedIn records a finished delegated sign-in of mailbox id (credential.SignIn.Redeem):
// the refresh token, encrypted, and the account that signed in, for display. The mailbox
// must sign in with a person's account (store.AuthOAuthDelegated). A mailbox in error
// (its old sign-in died) goes back to "not checked yet", since the error was about the
// old sign-in; cached token sources are dropped (OnCredentialsChange) and the audit log
// gets a "mailbox.sign_in" event with the token masked.
func (s *Service) SetSignedIn(ctx context.Context, actor string, id int64, account string, refresh vault.Secret) (store.Mailbox, error) {
	m, err := s.store.Mailbox(ctx, id)
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("mailbox %d: %w", id, err)
	}
	if m.Auth != store.AuthOAuthDelegated {
		return store.Mailbox{}, &ValidationError{Fields: map[string]string{
			"auth": "this mailbox does not sign in with a person's account: choose oauth_delegated first"}}
	}
	if refresh.Reveal() == "" {
		return store.Mailbox{}, errors.New("the sign-in gave no refresh token: nothing to store")
	}
	if err := s.passwords.Secrets().Set(ctx, id, store.SecretRefreshToken, refresh); err != nil {
		return store.Mailbox{}, err
	}
	oldAccount, hadToken := m.OAuth.Account, m.RefreshTokenSet
	m.OAuth.Account = strings.TrimSpace(account)
	// Written even when the account is the same: UpdatedAt moves, so the ingest loop and
	// the token cache start over with the new refresh token.
	if err := s.store.UpdateMailbox(ctx, m); err != nil {
		return store.Mailbox{}, fmt.Errorf("record the sign-in of mailbox %q: %w", m.Name, err)
	}
	if m.Status == store.StatusError {
		if err := s.store.SetMailboxStatus(ctx, id, store.MailboxStatus{Status: store.StatusUnknown, At: s.now()}); err != nil {
			return store.Mailbox{}, fmt.Errorf("reset the status of mailbox %q: %w", m.Name, err)
		}
	}
	if s.OnCredentialsChange != nil {
		s.OnCredentialsChange(id)
	}
	old := "account=" + oldAccount + "\nrefresh_token=" + mask(hadToken)
	if err := s.audit(ctx, actor, "mailbox.sign_in", id, old, "account="+m.OAuth.Account+"\nrefresh_token=***"); err != nil {
		return store.Mailbox{}, err
	}
	return s.store.Mailbox(ctx, id)
}
