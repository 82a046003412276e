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

// SecretStore is the part of the store that keeps mailboxes' encrypted secrets.
type SecretStore interface {
	SetSecret(ctx context.Context, mailboxID int64, name string, ciphertext []byte) error
	Secret(ctx context.Context, mailboxID int64, name string) ([]byte, error)
}

// Secrets reads and writes any named secret of a mailbox (store.SecretPassword,
// store.SecretClientSecret, ...), encrypted at rest.
type Secrets struct {
	store SecretStore
	vault *vault.Vault
}

// NewSecrets returns a Secrets. It does no I/O.
func NewSecrets(st SecretStore, v *vault.Vault) *Secrets {
	return &Secrets{store: st, vault: v}
}

// Set encrypts and stores the secret called name of a mailbox.
func (p *Secrets) Set(ctx context.Context, mailboxID int64, name string, secret vault.Secret) error {
	ct, err := p.vault.Seal([]byte(secret.Reveal()))
	if err != nil {
		return fmt.Errorf("encrypt %s of mailbox %d: %w", name, mailboxID, err)
	}
	if err := p.store.SetSecret(ctx, mailboxID, name, ct); err != nil {
		return fmt.Errorf("store %s of mailbox %d: %w", name, mailboxID, err)
	}
	return nil
}

// Get returns the secret called name of a mailbox; the zero Secret when none is stored.
func (p *Secrets) Get(ctx context.Context, mailboxID int64, name string) (vault.Secret, error) {
	ct, err := p.store.Secret(ctx, mailboxID, name)
	if err != nil {
		if store.IsNotFound(err) {
			return vault.Secret{}, nil
		}
		return vault.Secret{}, fmt.Errorf("read %s of mailbox %d: %w", name, mailboxID, err)
	}
	pt, err := p.vault.Open(ct)
	if err != nil {
		return vault.Secret{}, fmt.Errorf("decrypt %s of mailbox %d: %w", name, mailboxID, err)
	}
	return vault.NewSecret(string(pt)), nil
}

// Passwords reads and writes mailbox passwords, encrypted at rest.
type Passwords struct {
	secrets *Secrets
}

// NewPasswords returns a Passwords. It does no I/O.
func NewPasswords(st SecretStore, v *vault.Vault) *Passwords {
	return &Passwords{secrets: NewSecrets(st, v)}
}

// Secrets returns the store of every named secret, passwords included.
func (p *Passwords) Secrets() *Secrets { return p.secrets }

// Set encrypts and stores the password of a mailbox.
func (p *Passwords) Set(ctx context.Context, mailboxID int64, password vault.Secret) error {
	return p.secrets.Set(ctx, mailboxID, store.SecretPassword, password)
}

// Get returns the password of a mailbox; the zero Secret when none is stored.
func (p *Passwords) Get(ctx context.Context, mailboxID int64) (vault.Secret, error) {
	return p.secrets.Get(ctx, mailboxID, store.SecretPassword)
}
