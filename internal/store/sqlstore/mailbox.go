package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// mailboxColumns are the columns scanMailbox reads, from mailboxes m. Every lookup adds
// liveMailbox: a deleted mailbox's row stays only for the messages that name it.
const mailboxColumns = `m.id, m.name, m.direction, m.protocol, m.address, m.host, m.port,
	m.security, m.login, m.folder, m.after_action, m.move_folder, m.queue_id, m.max_size_mb,
	m.poll_interval_ms, m.enabled, m.is_default,
	EXISTS (SELECT 1 FROM credentials c WHERE c.mailbox_id = m.id AND c.name = 'password'),
	m.status, m.status_message, m.status_at, m.last_ok_at, m.created_at, m.updated_at,
	m.auth_method, m.oauth_provider, m.oauth_cloud, m.oauth_authority_url, m.oauth_tenant,
	m.oauth_client_id, m.oauth_token_url, m.oauth_authorize_url, m.oauth_scopes,
	m.oauth_account, m.graph_url, m.secret_expires_at,
	EXISTS (SELECT 1 FROM credentials c WHERE c.mailbox_id = m.id AND c.name = 'client_secret'),
	EXISTS (SELECT 1 FROM credentials c WHERE c.mailbox_id = m.id AND c.name = 'client_certificate'),
	EXISTS (SELECT 1 FROM credentials c WHERE c.mailbox_id = m.id AND c.name = 'refresh_token'),
	(SELECT c.updated_at FROM credentials c WHERE c.mailbox_id = m.id AND c.name = 'refresh_token'),
	m.autodiscover_host`

// liveMailbox selects the mailboxes m that are not deleted.
const liveMailbox = `m.deleted_at IS NULL`

func scanMailbox(sc scanner) (store.Mailbox, error) {
	var m store.Mailbox
	var pollMS int64
	err := sc.Scan(&m.ID, &m.Name, &m.Direction, &m.Protocol, &m.Address, &m.Host, &m.Port,
		&m.Security, &m.Login, &m.Folder, &m.AfterAction, &m.MoveFolder, idCol{&m.QueueID},
		&m.MaxSizeMB, &pollMS, &m.Enabled, &m.IsDefault,
		&m.PasswordSet, &m.Status, &m.StatusMessage, tcol(&m.StatusAt), tcol(&m.LastOKAt),
		tcol(&m.CreatedAt), tcol(&m.UpdatedAt),
		&m.Auth, &m.OAuth.Provider, &m.OAuth.Cloud, &m.OAuth.AuthorityURL, &m.OAuth.Tenant,
		&m.OAuth.ClientID, &m.OAuth.TokenURL, &m.OAuth.AuthorizeURL, &m.OAuth.Scopes,
		&m.OAuth.Account, &m.GraphURL, tcol(&m.OAuth.SecretExpiresAt),
		&m.ClientSecretSet, &m.CertificateSet, &m.RefreshTokenSet, tcol(&m.RefreshTokenAt),
		&m.AutodiscoverHost)
	m.PollInterval = time.Duration(pollMS) * time.Millisecond
	return m, err
}

// CreateMailbox stores a new mailbox; a name in use (by a mailbox not deleted) is
// store.ErrConflict and an unknown QueueID store.ErrNotFound. A new mailbox has Status
// unknown unless m.Status says otherwise.
func (s *Store) CreateMailbox(ctx context.Context, m store.Mailbox) (store.Mailbox, error) {
	op := fmt.Sprintf("create mailbox %q", m.Name)
	now := s.now()
	m.CreatedAt, m.UpdatedAt = now, now
	if m.Status == "" {
		m.Status = store.StatusUnknown
	}
	m.PasswordSet, m.ClientSecretSet, m.CertificateSet, m.RefreshTokenSet = false, false, false, false
	if m.Auth == "" {
		m.Auth = store.AuthPassword
	}
	err := s.inTx(ctx, func(tx runner) error {
		if err := queueExists(ctx, tx, m.QueueID); err != nil {
			return err
		}
		if m.IsDefault {
			if err := clearDefault(ctx, tx, 0); err != nil {
				return err
			}
		}
		return tx.queryRow(ctx, `INSERT INTO mailboxes (name, direction, protocol, address, host,
			port, security, login, folder, after_action, move_folder, queue_id, max_size_mb,
			poll_interval_ms, enabled, is_default, status, status_message, status_at, last_ok_at,
			created_at, updated_at, auth_method, oauth_provider, oauth_cloud,
			oauth_authority_url, oauth_tenant, oauth_client_id, oauth_token_url,
			oauth_authorize_url, oauth_scopes, oauth_account, graph_url, secret_expires_at,
			autodiscover_host)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
			?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			m.Name, m.Direction, m.Protocol, m.Address, m.Host, m.Port, m.Security, m.Login,
			m.Folder, m.AfterAction, m.MoveFolder, nullID(m.QueueID), m.MaxSizeMB,
			m.PollInterval.Milliseconds(), m.Enabled, m.IsDefault, m.Status,
			clean(m.StatusMessage), s.d.timeArg(m.StatusAt), s.d.timeArg(m.LastOKAt),
			s.d.timeArg(now), s.d.timeArg(now), authOrDefault(m.Auth), m.OAuth.Provider, m.OAuth.Cloud,
			m.OAuth.AuthorityURL, m.OAuth.Tenant, m.OAuth.ClientID, m.OAuth.TokenURL,
			m.OAuth.AuthorizeURL, m.OAuth.Scopes, m.OAuth.Account, m.GraphURL,
			s.d.timeArg(m.OAuth.SecretExpiresAt), m.AutodiscoverHost).Scan(&m.ID)
	})
	if err != nil {
		return store.Mailbox{}, s.wrap(op, err)
	}
	m.StatusAt = m.StatusAt.UTC().Truncate(time.Microsecond)
	m.LastOKAt = m.LastOKAt.UTC().Truncate(time.Microsecond)
	return m, nil
}

// nullID stores an optional reference: 0 is NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// authOrDefault stores "" as store.AuthPassword, the method of every mailbox before OAuth.
func authOrDefault(a string) string {
	if a == "" {
		return store.AuthPassword
	}
	return a
}

// queueExists returns store.ErrNotFound unless the queue exists (or id is 0: none).
func queueExists(ctx context.Context, tx runner, id int64) error {
	if id == 0 {
		return nil
	}
	var n int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM queues WHERE id = ?`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("queue %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// clearDefault removes the default mark from every mailbox but keep.
func clearDefault(ctx context.Context, tx runner, keep int64) error {
	_, err := tx.exec(ctx, `UPDATE mailboxes SET is_default = FALSE WHERE is_default AND id <> ?`, keep)
	return err
}

// UpdateMailbox saves the settings of an existing mailbox, QueueID included (an unknown
// queue is store.ErrNotFound). Its name, status fields and creation time are not changed.
func (s *Store) UpdateMailbox(ctx context.Context, m store.Mailbox) error {
	op := fmt.Sprintf("update mailbox %d", m.ID)
	err := s.inTx(ctx, func(tx runner) error {
		if err := queueExists(ctx, tx, m.QueueID); err != nil {
			return err
		}
		if m.IsDefault {
			if err := clearDefault(ctx, tx, m.ID); err != nil {
				return err
			}
		}
		return tx.execOne(ctx, `UPDATE mailboxes SET direction = ?, protocol = ?, address = ?,
			host = ?, port = ?, security = ?, login = ?, folder = ?, after_action = ?,
			move_folder = ?, queue_id = ?, max_size_mb = ?, poll_interval_ms = ?, enabled = ?,
			is_default = ?, updated_at = ?, auth_method = ?, oauth_provider = ?, oauth_cloud = ?,
			oauth_authority_url = ?, oauth_tenant = ?, oauth_client_id = ?, oauth_token_url = ?,
			oauth_authorize_url = ?, oauth_scopes = ?, oauth_account = ?, graph_url = ?,
			secret_expires_at = ?, autodiscover_host = ? WHERE id = ? AND deleted_at IS NULL`,
			m.Direction, m.Protocol, m.Address, m.Host, m.Port, m.Security, m.Login, m.Folder,
			m.AfterAction, m.MoveFolder, nullID(m.QueueID), m.MaxSizeMB,
			m.PollInterval.Milliseconds(), m.Enabled, m.IsDefault, s.d.timeArg(s.now()),
			authOrDefault(m.Auth), m.OAuth.Provider, m.OAuth.Cloud, m.OAuth.AuthorityURL,
			m.OAuth.Tenant, m.OAuth.ClientID, m.OAuth.TokenURL, m.OAuth.AuthorizeURL,
			m.OAuth.Scopes, m.OAuth.Account, m.GraphURL, s.d.timeArg(m.OAuth.SecretExpiresAt),
			m.AutodiscoverHost, m.ID)
	})
	return s.wrap(op, err)
}

// Mailbox returns the mailbox with id.
func (s *Store) Mailbox(ctx context.Context, id int64) (store.Mailbox, error) {
	m, err := scanMailbox(s.r.queryRow(ctx, `SELECT `+mailboxColumns+` FROM mailboxes m WHERE m.id = ? AND `+liveMailbox, id))
	if err != nil {
		return store.Mailbox{}, s.wrap(fmt.Sprintf("mailbox %d", id), err)
	}
	return m, nil
}

// MailboxByName returns the mailbox named name.
func (s *Store) MailboxByName(ctx context.Context, name string) (store.Mailbox, error) {
	m, err := scanMailbox(s.r.queryRow(ctx, `SELECT `+mailboxColumns+` FROM mailboxes m WHERE m.name = ? AND `+liveMailbox, name))
	if err != nil {
		return store.Mailbox{}, s.wrap(fmt.Sprintf("mailbox %q", name), err)
	}
	return m, nil
}

// ListMailboxes returns every mailbox that is not deleted, ordered by name.
func (s *Store) ListMailboxes(ctx context.Context) ([]store.Mailbox, error) {
	rows, err := s.r.query(ctx, `SELECT `+mailboxColumns+` FROM mailboxes m WHERE `+liveMailbox+`
		ORDER BY m.name, m.id`)
	if err != nil {
		return nil, s.wrap("list mailboxes", err)
	}
	defer rows.Close()
	var list []store.Mailbox
	for rows.Next() {
		m, err := scanMailbox(rows)
		if err != nil {
			return nil, s.wrap("list mailboxes", err)
		}
		list = append(list, m)
	}
	return list, s.wrap("list mailboxes", rows.Err())
}

// EnabledInboundIDs returns the ids of the live, enabled inbound mailboxes of protocols.
func (s *Store) EnabledInboundIDs(ctx context.Context, protocols []string) ([]int64, error) {
	if len(protocols) == 0 {
		return nil, nil
	}
	args := []any{store.Inbound, true}
	for _, p := range protocols {
		args = append(args, p)
	}
	rows, err := s.r.query(ctx, `SELECT m.id FROM mailboxes m WHERE `+liveMailbox+` AND m.direction = ? AND m.enabled = ?
		AND m.protocol IN (?`+strings.Repeat(", ?", len(protocols)-1)+`) ORDER BY m.id`, args...)
	if err != nil {
		return nil, s.wrap("list enabled inbound mailboxes", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap("list enabled inbound mailboxes", err)
		}
		ids = append(ids, id)
	}
	return ids, s.wrap("list enabled inbound mailboxes", rows.Err())
}

// DeleteMailbox soft-deletes a mailbox: the row is marked deleted (and disabled, not
// default, in no queue) so that its messages, conversations and work items keep their
// mailbox and its name; its secrets, cursor, From addresses and sign-ins in progress are
// removed. A deleted mailbox is store.ErrNotFound everywhere, and its name is free for a
// new mailbox.
func (s *Store) DeleteMailbox(ctx context.Context, id int64) error {
	op := fmt.Sprintf("delete mailbox %d", id)
	now := s.d.timeArg(s.now())
	err := s.inTx(ctx, func(tx runner) error {
		err := tx.execOne(ctx, `UPDATE mailboxes SET deleted_at = ?, updated_at = ?, enabled = FALSE,
			is_default = FALSE, queue_id = NULL WHERE id = ? AND deleted_at IS NULL`, now, now, id)
		if err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM credentials WHERE mailbox_id = ?`,
			`DELETE FROM cursors WHERE mailbox_id = ?`,
			`DELETE FROM from_addresses WHERE mailbox_id = ?`,
			`DELETE FROM ingest_failures WHERE mailbox_id = ?`,
			`DELETE FROM pending_signins WHERE mailbox_id = ?`,
		} {
			if _, err := tx.exec(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap(op, err)
}

// SetMailboxStatus records the live connection state of a mailbox; a connected status
// also sets LastOKAt. It does not change UpdatedAt: that marks a change of the settings,
// and the ingest supervisor restarts a mailbox's loop when it moves.
func (s *Store) SetMailboxStatus(ctx context.Context, id int64, st store.MailboxStatus) error {
	return s.wrap(fmt.Sprintf("set status of mailbox %d", id), s.setMailboxStatus(ctx, s.w, id, st))
}

func (s *Store) setMailboxStatus(ctx context.Context, r runner, id int64, st store.MailboxStatus) error {
	at := st.At
	if at.IsZero() {
		at = s.now()
	}
	if st.Status == store.StatusConnected {
		return r.execOne(ctx, `UPDATE mailboxes SET status = ?, status_message = ?, status_at = ?,
			last_ok_at = ? WHERE id = ? AND deleted_at IS NULL`, st.Status, clean(st.Message), s.d.timeArg(at), s.d.timeArg(at), id)
	}
	return r.execOne(ctx, `UPDATE mailboxes SET status = ?, status_message = ?, status_at = ?
		WHERE id = ? AND deleted_at IS NULL`, st.Status, clean(st.Message), s.d.timeArg(at), id)
}

// SetSecret stores an encrypted secret of a mailbox under name, replacing any previous one.
func (s *Store) SetSecret(ctx context.Context, mailboxID int64, name string, ciphertext []byte) error {
	op := fmt.Sprintf("set secret %q of mailbox %d", name, mailboxID)
	err := s.inTx(ctx, func(tx runner) error {
		if err := mailboxExists(ctx, tx, mailboxID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO credentials (mailbox_id, name, secret, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (mailbox_id, name) DO UPDATE SET secret = excluded.secret, updated_at = excluded.updated_at`,
			mailboxID, name, ciphertext, s.d.timeArg(s.now()))
		return err
	})
	return s.wrap(op, err)
}

// DeleteSecret removes the secret of a mailbox stored under name, if any.
func (s *Store) DeleteSecret(ctx context.Context, mailboxID int64, name string) error {
	_, err := s.w.exec(ctx, `DELETE FROM credentials WHERE mailbox_id = ? AND name = ?`, mailboxID, name)
	return s.wrap(fmt.Sprintf("delete secret %q of mailbox %d", name, mailboxID), err)
}

// Secret returns the encrypted secret of a mailbox stored under name.
func (s *Store) Secret(ctx context.Context, mailboxID int64, name string) ([]byte, error) {
	var b []byte
	err := s.r.queryRow(ctx, `SELECT secret FROM credentials WHERE mailbox_id = ? AND name = ?`, mailboxID, name).Scan(&b)
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("secret %q of mailbox %d", name, mailboxID), err)
	}
	return b, nil
}

// mailboxExists returns store.ErrNotFound unless the mailbox exists and is not deleted.
func mailboxExists(ctx context.Context, tx runner, id int64) error {
	var n int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM mailboxes WHERE id = ? AND deleted_at IS NULL`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("mailbox %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// SetMailboxEnabled enables or disables one mailbox and bumps its UpdatedAt.
func (s *Store) SetMailboxEnabled(ctx context.Context, id int64, enabled bool) error {
	err := s.w.execOne(ctx, `UPDATE mailboxes SET enabled = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`, enabled, s.d.timeArg(s.now()), id)
	return s.wrap(fmt.Sprintf("set enabled of mailbox %d to %t", id, enabled), err)
}

// SetAllMailboxesEnabled enables or disables every mailbox of a direction ("" for both).
// Only the mailboxes whose flag changes get a new UpdatedAt: the others' loops need no
// restart.
func (s *Store) SetAllMailboxesEnabled(ctx context.Context, direction string, enabled bool) error {
	op := fmt.Sprintf("set enabled of all %s mailboxes to %t", direction, enabled)
	switch direction {
	case "", store.Inbound, store.Outbound:
	default:
		return fmt.Errorf("%s: unknown direction (want inbound, outbound or empty for both)", op)
	}
	_, err := s.w.exec(ctx, `UPDATE mailboxes SET enabled = ?, updated_at = ?
		WHERE deleted_at IS NULL AND enabled <> ? AND (? = '' OR direction = ?)`,
		enabled, s.d.timeArg(s.now()), enabled, direction, direction)
	return s.wrap(op, err)
}

// AssignMailbox puts an inbound mailbox in a queue, or in none for queueID 0, in one
// transaction: in an enabled queue the mailbox is enabled, in a disabled queue or in none
// it is disabled. UpdatedAt is bumped. An unknown mailbox or queue is store.ErrNotFound;
// an outbound mailbox is refused.
func (s *Store) AssignMailbox(ctx context.Context, mailboxID, queueID int64) error {
	op := fmt.Sprintf("assign mailbox %d to queue %d", mailboxID, queueID)
	err := s.inTx(ctx, func(tx runner) error {
		// The queue row is locked before the mailbox row, in the order SetQueueEnabled
		// takes them, so that the two never deadlock on PostgreSQL.
		enabled := false
		if queueID != 0 {
			err := tx.queryRow(ctx, `SELECT enabled FROM queues WHERE id = ?`+s.d.forUpdate, queueID).Scan(&enabled)
			if err != nil {
				return s.wrap(fmt.Sprintf("queue %d", queueID), err)
			}
		}
		var direction string
		err := tx.queryRow(ctx, `SELECT direction FROM mailboxes WHERE id = ? AND deleted_at IS NULL`+s.d.forUpdate,
			mailboxID).Scan(&direction)
		if err != nil {
			return s.wrap(fmt.Sprintf("mailbox %d", mailboxID), err)
		}
		if direction != store.Inbound {
			return fmt.Errorf("mailbox %d is %s: only inbound mailboxes belong to queues", mailboxID, direction)
		}
		_, err = tx.exec(ctx, `UPDATE mailboxes SET queue_id = ?, enabled = ?, updated_at = ? WHERE id = ?`,
			nullID(queueID), enabled, s.d.timeArg(s.now()), mailboxID)
		return err
	})
	return s.wrap(op, err)
}
