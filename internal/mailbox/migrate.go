package mailbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Migration moves mailboxes from password logins to OAuth 2.0, self-service: the seed's
// product asks its customers to open a support case for this. The administrator enters the
// app registration once (Auth, OAuth, ClientSecret or Certificate), tests it on one mailbox,
// then migrates the selected ones in one step.
type Migration struct {
	// Auth is the OAuth method (store.AuthOAuthApp by default).
	Auth         string
	OAuth        store.OAuth
	GraphURL     string
	ClientSecret *vault.Secret
	Certificate  *vault.Secret
	// ToGraph switches inbound IMAP/POP3 and outbound SMTP mailboxes to Microsoft Graph.
	// Messages read through IMAP before the switch are recognised again by their
	// Message-ID and content (DESIGN.md invariant 2), so nothing is stored twice; without
	// ToGraph the protocol, host and IMAP UID cursor stay as they are and only the login
	// changes to XOAUTH2.
	ToGraph bool
}

// MigrationResult is what happened to one mailbox.
type MigrationResult struct {
	MailboxID  int64
	Name       string
	Migrated   bool
	RolledBack bool
	// Report is the connection test run with the new sign-in; Error says why the mailbox
	// could not be migrated (settings refused, or the test failed and it was rolled back).
	Report diag.Report
	Error  string
}

// Migrate applies mig to each mailbox in ids, one after the other: the new sign-in is
// saved, the connection test runs with it, and a mailbox whose test fails is put back
// exactly as it was (settings and enabled state; its password is kept throughout, so a
// rollback needs nothing re-entered). The IMAP cursor is never touched by the switch.
func (s *Service) Migrate(ctx context.Context, actor string, ids []int64, mig Migration) ([]MigrationResult, error) {
	var out []MigrationResult
	for _, id := range ids {
		old, err := s.store.Mailbox(ctx, id)
		if err != nil {
			return out, fmt.Errorf("mailbox %d: %w", id, err)
		}
		r := MigrationResult{MailboxID: id, Name: old.Name}
		in := mig.Input(old)
		if _, err := s.Update(ctx, actor, id, in); err != nil {
			r.Error = err.Error()
			out = append(out, r)
			continue
		}
		rep, err := s.Test(ctx, id)
		if err != nil {
			return out, err
		}
		r.Report = rep
		if rep.OK {
			r.Migrated = true
			if err := s.audit(ctx, actor, "mailbox.migrate", id, "auth="+old.Auth+" protocol="+old.Protocol, "auth="+in.Auth+" protocol="+in.Protocol); err != nil {
				return out, err
			}
			out = append(out, r)
			continue
		}
		// Roll back: the old settings, as they were, without the secrets the migration added.
		if err := s.store.UpdateMailbox(ctx, old); err != nil {
			return out, fmt.Errorf("roll back mailbox %q: %w", old.Name, err)
		}
		for _, x := range []struct {
			name string
			had  bool
		}{{store.SecretClientSecret, old.ClientSecretSet}, {store.SecretCertificate, old.CertificateSet}} {
			if !x.had {
				if err := s.store.DeleteSecret(ctx, id, x.name); err != nil {
					return out, fmt.Errorf("roll back mailbox %q: %w", old.Name, err)
				}
			}
		}
		if s.OnCredentialsChange != nil {
			s.OnCredentialsChange(id)
		}
		r.RolledBack = true
		r.Error = "the connection test failed with the new sign-in; the mailbox keeps its old settings: " + failedStep(rep)
		if err := s.audit(ctx, actor, "mailbox.migrate_rollback", id, "auth="+in.Auth+" protocol="+in.Protocol, "auth="+old.Auth+" protocol="+old.Protocol); err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Input is the settings mailbox m gets from mig, as Migrate saves them: the OAuth sign-in
// and, for ToGraph, Microsoft Graph instead of IMAP, POP3 or SMTP (a folder other than the
// IMAP INBOX is kept; delete after processing becomes mark read).
func (mig Migration) Input(m store.Mailbox) Input {
	in := FromMailbox(m)
	in.Name = ""
	in.Auth = mig.Auth
	if in.Auth == "" {
		in.Auth = store.AuthOAuthApp
	}
	in.OAuth, in.GraphURL = mig.OAuth, mig.GraphURL
	in.ClientSecret, in.Certificate = mig.ClientSecret, mig.Certificate
	if mig.ToGraph {
		in.Protocol, in.Host, in.Port, in.Security, in.AutodiscoverHost = Graph, "", 0, "", ""
		if m.Protocol == IMAP && !strings.EqualFold(m.Folder, "INBOX") {
			in.Folder = m.Folder
		} else {
			in.Folder = ""
		}
		if in.AfterAction == store.AfterDelete {
			in.AfterAction = store.AfterMarkRead // Graph mailboxes are marked read or moved
		}
	}
	return in
}

// failedStep names the step of rep that failed and its advice.
func failedStep(rep diag.Report) string {
	for _, st := range rep.Steps {
		if !st.OK {
			if st.Advice != "" {
				return st.Name + ": " + st.Advice
			}
			return st.Name + ": " + st.Detail
		}
	}
	return "no step passed"
}
