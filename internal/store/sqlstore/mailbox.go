package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// mailboxColumns are the columns scanMailbox reads, from mailboxes m.
const mailboxColumns = `m.id, m.name, m.direction, m.protocol, m.address, m.host, m.port,
	m.security, m.login, m.folder, m.max_size_mb, m.poll_interval_ms, m.enabled, m.is_default,
	EXISTS (SELECT 1 FROM credentials c WHERE c.mailbox_id = m.id AND c.name = 'password'),
	m.status, m.status_message, m.status_at, m.last_ok_at, m.created_at, m.updated_at`

func scanMailbox(sc scanner) (store.Mailbox, error) {
	var m store.Mailbox
	var pollMS int64
	err := sc.Scan(&m.ID, &m.Name, &m.Direction, &m.Protocol, &m.Address, &m.Host, &m.Port,
		&m.Security, &m.Login, &m.Folder, &m.MaxSizeMB, &pollMS, &m.Enabled, &m.IsDefault,
		&m.PasswordSet, &m.Status, &m.StatusMessage, tcol(&m.StatusAt), tcol(&m.LastOKAt),
		tcol(&m.CreatedAt), tcol(&m.UpdatedAt))
	m.PollInterval = time.Duration(pollMS) * time.Millisecond
	return m, err
}

// CreateMailbox stores a new mailbox; a name in use is store.ErrConflict. A new mailbox
// has Status unknown unless m.Status says otherwise.
func (s *Store) CreateMailbox(ctx context.Context, m store.Mailbox) (store.Mailbox, error) {
	op := fmt.Sprintf("create mailbox %q", m.Name)
	now := s.now()
	m.CreatedAt, m.UpdatedAt = now, now
	if m.Status == "" {
		m.Status = store.StatusUnknown
	}
	m.PasswordSet = false
	err := s.inTx(ctx, func(tx runner) error {
		if m.IsDefault {
			if err := clearDefault(ctx, tx, 0); err != nil {
				return err
			}
		}
		return tx.queryRow(ctx, `INSERT INTO mailboxes (name, direction, protocol, address, host,
			port, security, login, folder, max_size_mb, poll_interval_ms, enabled, is_default,
			status, status_message, status_at, last_ok_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			m.Name, m.Direction, m.Protocol, m.Address, m.Host, m.Port, m.Security, m.Login,
			m.Folder, m.MaxSizeMB, m.PollInterval.Milliseconds(), m.Enabled, m.IsDefault,
			m.Status, clean(m.StatusMessage), s.d.timeArg(m.StatusAt), s.d.timeArg(m.LastOKAt),
			s.d.timeArg(now), s.d.timeArg(now)).Scan(&m.ID)
	})
	if err != nil {
		return store.Mailbox{}, s.wrap(op, err)
	}
	m.StatusAt = m.StatusAt.UTC().Truncate(time.Microsecond)
	m.LastOKAt = m.LastOKAt.UTC().Truncate(time.Microsecond)
	return m, nil
}

// clearDefault removes the default mark from every mailbox but keep.
func clearDefault(ctx context.Context, tx runner, keep int64) error {
	_, err := tx.exec(ctx, `UPDATE mailboxes SET is_default = FALSE WHERE is_default AND id <> ?`, keep)
	return err
}

// UpdateMailbox saves the settings of an existing mailbox. Its name, status fields and
// creation time are not changed.
func (s *Store) UpdateMailbox(ctx context.Context, m store.Mailbox) error {
	op := fmt.Sprintf("update mailbox %d", m.ID)
	err := s.inTx(ctx, func(tx runner) error {
		if m.IsDefault {
			if err := clearDefault(ctx, tx, m.ID); err != nil {
				return err
			}
		}
		return tx.execOne(ctx, `UPDATE mailboxes SET direction = ?, protocol = ?, address = ?,
			host = ?, port = ?, security = ?, login = ?, folder = ?, max_size_mb = ?,
			poll_interval_ms = ?, enabled = ?, is_default = ?, updated_at = ? WHERE id = ?`,
			m.Direction, m.Protocol, m.Address, m.Host, m.Port, m.Security, m.Login, m.Folder,
			m.MaxSizeMB, m.PollInterval.Milliseconds(), m.Enabled, m.IsDefault,
			s.d.timeArg(s.now()), m.ID)
	})
	return s.wrap(op, err)
}

// Mailbox returns the mailbox with id.
func (s *Store) Mailbox(ctx context.Context, id int64) (store.Mailbox, error) {
	m, err := scanMailbox(s.r.queryRow(ctx, `SELECT `+mailboxColumns+` FROM mailboxes m WHERE m.id = ?`, id))
	if err != nil {
		return store.Mailbox{}, s.wrap(fmt.Sprintf("mailbox %d", id), err)
	}
	return m, nil
}

// MailboxByName returns the mailbox named name.
func (s *Store) MailboxByName(ctx context.Context, name string) (store.Mailbox, error) {
	m, err := scanMailbox(s.r.queryRow(ctx, `SELECT `+mailboxColumns+` FROM mailboxes m WHERE m.name = ?`, name))
	if err != nil {
		return store.Mailbox{}, s.wrap(fmt.Sprintf("mailbox %q", name), err)
	}
	return m, nil
}

// ListMailboxes returns every mailbox, ordered by name.
func (s *Store) ListMailboxes(ctx context.Context) ([]store.Mailbox, error) {
	rows, err := s.r.query(ctx, `SELECT `+mailboxColumns+` FROM mailboxes m ORDER BY m.name, m.id`)
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

// DeleteMailbox deletes a mailbox with its secrets and cursor. A mailbox that still has
// stored messages is not deleted (store.ErrConflict): the messages are the record of what
// customers wrote, so the mailbox is disabled instead.
func (s *Store) DeleteMailbox(ctx context.Context, id int64) error {
	op := fmt.Sprintf("delete mailbox %d", id)
	err := s.inTx(ctx, func(tx runner) error {
		var exists int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM mailboxes WHERE id = ?`, id).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return store.ErrNotFound
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM messages WHERE mailbox_id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("it has %d stored messages, which are kept: disable the mailbox instead: %w", n, store.ErrConflict)
		}
		for _, q := range []string{
			`DELETE FROM credentials WHERE mailbox_id = ?`,
			`DELETE FROM cursors WHERE mailbox_id = ?`,
			`DELETE FROM mailboxes WHERE id = ?`,
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
// also sets LastOKAt.
func (s *Store) SetMailboxStatus(ctx context.Context, id int64, st store.MailboxStatus) error {
	at := st.At
	if at.IsZero() {
		at = s.now()
	}
	var err error
	if st.Status == store.StatusConnected {
		err = s.w.execOne(ctx, `UPDATE mailboxes SET status = ?, status_message = ?, status_at = ?,
			last_ok_at = ? WHERE id = ?`, st.Status, clean(st.Message), s.d.timeArg(at), s.d.timeArg(at), id)
	} else {
		err = s.w.execOne(ctx, `UPDATE mailboxes SET status = ?, status_message = ?, status_at = ?
			WHERE id = ?`, st.Status, clean(st.Message), s.d.timeArg(at), id)
	}
	return s.wrap(fmt.Sprintf("set status of mailbox %d", id), err)
}

// SetSecret stores an encrypted secret of a mailbox under name, replacing any previous one.
func (s *Store) SetSecret(ctx context.Context, mailboxID int64, name string, ciphertext []byte) error {
	op := fmt.Sprintf("set secret %q of mailbox %d", name, mailboxID)
	err := s.inTx(ctx, func(tx runner) error {
		var exists int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM mailboxes WHERE id = ?`, mailboxID).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return store.ErrNotFound
		}
		_, err := tx.exec(ctx, `INSERT INTO credentials (mailbox_id, name, secret, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (mailbox_id, name) DO UPDATE SET secret = excluded.secret, updated_at = excluded.updated_at`,
			mailboxID, name, ciphertext, s.d.timeArg(s.now()))
		return err
	})
	return s.wrap(op, err)
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
