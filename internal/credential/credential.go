// Package credential gives connectors the secrets they log in with:
//
//   - the password of a mailbox, kept encrypted in the store by the vault (AES-256-GCM);
//   - OAuth 2.0 access tokens (oauth.go): connector.TokenFunc values for the client
//     credentials grant (RFC 6749 §4.4) and the refresh token grant (RFC 6749 §6), built on
//     golang.org/x/oauth2, that renew themselves before expiry, renew at once when a server
//     refuses a token, save every rotated refresh token, and turn token endpoint errors
//     (RFC 6749 §5.2, Microsoft's AADSTS codes) into *connector.Error with advice;
//   - the SASL clients that present those tokens (sasl.go): XOAUTH2 and OAUTHBEARER
//     (RFC 7628), shared by the IMAP and POP3 connectors.
//
// Invariant (DESIGN.md 3 and 10): plaintext secrets exist only in memory, inside
// vault.Secret, whose every printed form is masked.
package credential

import (
	"context"
	"fmt"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// secretPassword is the store name of a mailbox's password.
const secretPassword = "password"

// Passwords reads and writes mailbox passwords, encrypted at rest.
type Passwords struct {
	store store.Store
	vault *vault.Vault
}

// NewPasswords returns a Passwords. It does no I/O.
func NewPasswords(st store.Store, v *vault.Vault) *Passwords {
	return &Passwords{store: st, vault: v}
}

// Set encrypts and stores the password of a mailbox.
func (p *Passwords) Set(ctx context.Context, mailboxID int64, password vault.Secret) error {
	ct, err := p.vault.Seal([]byte(password.Reveal()))
	if err != nil {
		return fmt.Errorf("encrypt password of mailbox %d: %w", mailboxID, err)
	}
	if err := p.store.SetSecret(ctx, mailboxID, secretPassword, ct); err != nil {
		return fmt.Errorf("store password of mailbox %d: %w", mailboxID, err)
	}
	return nil
}

// Get returns the password of a mailbox; the zero Secret when none is stored.
func (p *Passwords) Get(ctx context.Context, mailboxID int64) (vault.Secret, error) {
	ct, err := p.store.Secret(ctx, mailboxID, secretPassword)
	if err != nil {
		if store.IsNotFound(err) {
			return vault.Secret{}, nil
		}
		return vault.Secret{}, fmt.Errorf("read password of mailbox %d: %w", mailboxID, err)
	}
	pt, err := p.vault.Open(ct)
	if err != nil {
		return vault.Secret{}, fmt.Errorf("decrypt password of mailbox %d: %w", mailboxID, err)
	}
	return vault.NewSecret(string(pt)), nil
}
