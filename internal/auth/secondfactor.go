package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Second factor: TOTP (RFC 6238: 6 digits, 30-second steps, SHA-1, which every
// authenticator app reads) for local accounts, optional per user.
//
// A user enrols on their own page: StartSecondFactor makes a secret, keeps it sealed by the
// vault (unconfirmed) and returns it once, as text and as an otpauth:// URI; the factor is
// active only after ConfirmSecondFactor got a right code. The secret is never shown again.
// At sign-in the code of the current step or the one before or after is accepted (clocks
// drift), each step once: the store only moves the last accepted step forward
// (store.Throttles.UseSecondFactorStep), so a code seen over a shoulder cannot be used a
// second time, on this node or another. A wrong code is a failed sign-in for the throttle.
// An admin removes a user's second factor (RemoveSecondFactor, audited as
// "user.second_factor.remove"); enrolling is audited as "user.second_factor.enable".

// totpIssuer names postroom in authenticator apps.
const totpIssuer = "postroom"

// ticketLifetime is how long the second step of the sign-in page may take.
const ticketLifetime = 5 * time.Minute

// ErrNoVault means second factors are not available: the Service has no vault.
var ErrNoVault = errors.New("second factors are not available on this server: it has no vault key")

// ErrSecondFactorActive means the user has an active second factor already: an admin
// removes it before a new one is enrolled.
var ErrSecondFactorActive = errors.New("you have a second factor already: ask an administrator to remove it before you enrol a new one")

// Enrolment is a second factor being set up: shown once.
type Enrolment struct {
	Secret string // base32, to type into an app
	URI    string // otpauth://totp/..., for a QR code or a click
}

func (s *Service) vault() (*vault.Vault, error) {
	s.guard.mu.Lock()
	defer s.guard.mu.Unlock()
	if s.guard.vault == nil || s.guard.st == nil {
		return nil, ErrNoVault
	}
	return s.guard.vault, nil
}

// SecondFactorState reports whether u has a second factor being enrolled and whether it
// is active.
func (s *Service) SecondFactorState(ctx context.Context, userID int64) (enrolled, active bool, err error) {
	if s.guard.st == nil {
		return false, false, nil
	}
	f, err := s.guard.st.SecondFactor(ctx, userID)
	switch {
	case store.IsNotFound(err):
		return false, false, nil
	case err != nil:
		return false, false, fmt.Errorf("second factor of user %d: %w", userID, err)
	}
	return true, f.Confirmed, nil
}

// StartSecondFactor makes a new secret for u and keeps it, sealed and not yet active.
func (s *Service) StartSecondFactor(ctx context.Context, u store.User) (Enrolment, error) {
	v, err := s.vault()
	if err != nil {
		return Enrolment{}, err
	}
	if _, active, err := s.SecondFactorState(ctx, u.ID); err != nil {
		return Enrolment{}, err
	} else if active {
		return Enrolment{}, ErrSecondFactorActive
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: u.Username, Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return Enrolment{}, fmt.Errorf("make a second factor for %q: %w", u.Username, err)
	}
	sealed, err := v.Seal([]byte(key.Secret()))
	if err != nil {
		return Enrolment{}, fmt.Errorf("seal the second factor of %q: %w", u.Username, err)
	}
	if err := s.guard.st.SetSecondFactor(ctx, store.SecondFactor{UserID: u.ID, Secret: sealed, CreatedAt: s.now().UTC()}); err != nil {
		return Enrolment{}, fmt.Errorf("keep the second factor of %q: %w", u.Username, err)
	}
	return Enrolment{Secret: key.Secret(), URI: key.URL()}, nil
}

// ConfirmSecondFactor activates u's enrolled second factor when code is right.
func (s *Service) ConfirmSecondFactor(ctx context.Context, u store.User, code string) error {
	if _, err := s.vault(); err != nil {
		return err
	}
	f, err := s.guard.st.SecondFactor(ctx, u.ID)
	if store.IsNotFound(err) {
		return errors.New("no second factor is being set up: start again")
	}
	if err != nil {
		return fmt.Errorf("second factor of %q: %w", u.Username, err)
	}
	if f.Confirmed {
		return ErrSecondFactorActive
	}
	ok, err := s.checkCode(ctx, f, code, s.now().UTC())
	if err != nil {
		return err
	}
	if !ok {
		return ErrBadSecondFactor
	}
	if err := s.guard.st.AddAudit(ctx, store.AuditEvent{Actor: u.Username, Action: "user.second_factor.enable", Object: fmt.Sprintf("user:%d", u.ID), New: "totp"}); err != nil {
		s.logger.ErrorContext(ctx, "audit second factor", slog.Any("error", err))
	}
	return nil
}

// RemoveSecondFactor removes the second factor of user id (an admin's act, or the user
// abandoning an enrolment); store.ErrNotFound when there is none.
func (s *Service) RemoveSecondFactor(ctx context.Context, actor string, id int64) error {
	if s.guard.st == nil {
		return fmt.Errorf("remove second factor of user %d: %w", id, store.ErrNotFound)
	}
	if err := s.guard.st.DeleteSecondFactor(ctx, id); err != nil {
		return fmt.Errorf("remove second factor: %w", err)
	}
	if err := s.guard.st.AddAudit(ctx, store.AuditEvent{Actor: actor, Action: "user.second_factor.remove", Object: fmt.Sprintf("user:%d", id), Old: "totp"}); err != nil {
		s.logger.ErrorContext(ctx, "audit second factor", slog.Any("error", err))
	}
	return nil
}

// activeSecondFactor returns u's confirmed second factor, if any.
func (s *Service) activeSecondFactor(ctx context.Context, userID int64) (store.SecondFactor, bool, error) {
	if s.guard.st == nil {
		return store.SecondFactor{}, false, nil
	}
	f, err := s.guard.st.SecondFactor(ctx, userID)
	switch {
	case store.IsNotFound(err):
		return store.SecondFactor{}, false, nil
	case err != nil:
		return store.SecondFactor{}, false, fmt.Errorf("second factor of user %d: %w", userID, err)
	}
	return f, f.Confirmed, nil
}

// checkCode reports whether code is f's code of the step of now or a neighbour, not used
// before; the step is then used up.
func (s *Service) checkCode(ctx context.Context, f store.SecondFactor, code string, now time.Time) (bool, error) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return false, nil
	}
	v, err := s.vault()
	if err != nil {
		return false, err
	}
	secret, err := v.Open(f.Secret)
	if err != nil {
		return false, fmt.Errorf("open the second factor of user %d: %w", f.UserID, err)
	}
	opts := totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	for _, k := range []int64{0, -1, 1} {
		at := now.Add(time.Duration(k) * 30 * time.Second)
		step := at.Unix() / 30
		if step <= f.LastStep {
			continue
		}
		want, err := totp.GenerateCodeCustom(string(secret), at, opts)
		if err != nil {
			return false, fmt.Errorf("second factor code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		err = s.guard.st.UseSecondFactorStep(ctx, f.UserID, step)
		if errors.Is(err, store.ErrConflict) {
			return false, nil // used a moment ago
		}
		if err != nil {
			return false, fmt.Errorf("use second factor code: %w", err)
		}
		return true, nil
	}
	return false, nil
}

// ticket seals "the password of u was right at now" for the second step of the page.
func (s *Service) ticket(u store.User, now time.Time) (string, error) {
	v, err := s.vault()
	if err != nil {
		return "", err
	}
	plain := fmt.Sprintf("signin-ticket|%d|%d|%s", u.ID, now.Add(ticketLifetime).Unix(), randomToken()[:8])
	sealed, err := v.Seal([]byte(plain))
	if err != nil {
		return "", fmt.Errorf("seal sign-in ticket: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// ErrTicket means the second step of a sign-in came too late or was tampered with.
var ErrTicket = errors.New("the sign-in took too long or its form was changed: enter your user name and password again")

// openTicket returns the user of a ticket made less than ticketLifetime ago.
func (s *Service) openTicket(ctx context.Context, ticket string, now time.Time) (store.User, error) {
	v, err := s.vault()
	if err != nil {
		return store.User{}, ErrTicket
	}
	raw, err := base64.RawURLEncoding.DecodeString(ticket)
	if err != nil {
		return store.User{}, ErrTicket
	}
	plain, err := v.Open(raw)
	if err != nil {
		return store.User{}, ErrTicket
	}
	parts := strings.Split(string(plain), "|")
	if len(parts) != 4 || parts[0] != "signin-ticket" {
		return store.User{}, ErrTicket
	}
	id, err1 := strconv.ParseInt(parts[1], 10, 64)
	exp, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || now.Unix() > exp {
		return store.User{}, ErrTicket
	}
	u, err := s.st.UserByID(ctx, id)
	if store.IsNotFound(err) {
		return store.User{}, ErrTicket
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sign-in ticket: %w", err)
	}
	return u, nil
}
