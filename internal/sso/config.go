package sso

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// SecretSetting is the setting that holds the client secret sealed by the vault (base64);
// rotate-key re-encrypts it.
const SecretSetting = "sso.client_secret"

// Settings keys: the configuration (JSON) and the client secret (sealed by the vault,
// base64).
const (
	settingConfig = "sso.config"
	settingSecret = SecretSetting
)

// Mapping gives a role, a team or both to everyone whose id token carries Value in its
// groups or roles claim.
type Mapping struct {
	// Value is a group (Entra ID: the group's object id) or an app role value.
	Value string `json:"value"`
	// Role is admin, supervisor or agent; "" gives no role.
	Role string `json:"role,omitempty"`
	// Team is the name of a postroom team; "" gives no team.
	Team string `json:"team,omitempty"`
}

// Config is single sign-on's configuration, set by an administrator.
type Config struct {
	// Issuer is the OpenID provider's issuer URL; "" switches single sign-on off. Entra
	// ID: https://login.microsoftonline.com/{tenant id}/v2.0.
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// Name is the provider's name on the button ("Sign in with Microsoft"); "" means
	// "Microsoft" for Entra ID, else the issuer's host.
	Name     string    `json:"name,omitempty"`
	Mappings []Mapping `json:"mappings"`
	// AutoCreate creates the user at their first sign-in; without it, only users that
	// exist already may sign in.
	AutoCreate bool `json:"auto_create"`
	// UnmappedRole is the role of a person whom no mapping gives a role; "" refuses them
	// (when role mappings exist) or, without role mappings, lets only existing users in.
	UnmappedRole string `json:"unmapped_role,omitempty"`
	// LocalPasswordsOff refuses password sign-in to everyone except BreakGlass.
	LocalPasswordsOff bool     `json:"local_passwords_off"`
	BreakGlass        []string `json:"break_glass"`

	// SecretIssuer is the issuer the stored client secret was entered for: the secret is
	// sent to no other.
	SecretIssuer string `json:"secret_issuer,omitempty"`
	// ClientSecretSet says a client secret is stored (not part of the stored JSON).
	ClientSecretSet bool `json:"-"`
}

// Enabled reports whether single sign-on is configured.
func (c Config) Enabled() bool { return c.Issuer != "" && c.ClientID != "" }

var entraIssuerRe = regexp.MustCompile(`^/[0-9a-fA-F-]{36}/v2\.0/?$`)

// IsEntra reports whether the issuer looks like Microsoft Entra ID's (a tenant GUID
// followed by /v2.0, on login.microsoftonline.com or a stand-in for it).
func (c Config) IsEntra() bool {
	u, err := url.Parse(c.Issuer)
	return err == nil && (strings.EqualFold(u.Hostname(), "login.microsoftonline.com") || entraIssuerRe.MatchString(u.Path))
}

// ProviderName is the name on the button.
func (c Config) ProviderName() string {
	if c.Name != "" {
		return c.Name
	}
	if c.IsEntra() {
		return "Microsoft"
	}
	if u, err := url.Parse(c.Issuer); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "your organisation"
}

// Input is an administrator's change of the configuration.
type Input struct {
	Config
	// ClientSecret replaces the stored secret; zero keeps it (allowed only while the
	// issuer stays the one it was entered for).
	ClientSecret vault.Secret
}

// FieldErrors are the fields of an Input that are wrong, each with advice.
type FieldErrors map[string]string

func (e FieldErrors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e[k])
	}
	return "single sign-on settings: " + strings.Join(parts, "; ")
}

// Config reads the configuration (the zero Config when none was saved).
func (s *Service) Config(ctx context.Context) (Config, error) {
	var c Config
	raw, err := s.st.Setting(ctx, settingConfig)
	switch {
	case store.IsNotFound(err):
		return c, nil
	case err != nil:
		return c, fmt.Errorf("read single sign-on settings: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return Config{}, fmt.Errorf("read single sign-on settings: %w", err)
	}
	sec, err := s.st.Setting(ctx, settingSecret)
	if err != nil && !store.IsNotFound(err) {
		return Config{}, fmt.Errorf("read single sign-on client secret: %w", err)
	}
	c.ClientSecretSet = sec != ""
	return c, nil
}

// clientSecret opens the stored secret, but only for the issuer it was entered for.
func (s *Service) clientSecret(ctx context.Context, c Config) (string, error) {
	if c.SecretIssuer != c.Issuer {
		return "", nil
	}
	sec, err := s.st.Setting(ctx, settingSecret)
	if store.IsNotFound(err) || (err == nil && sec == "") {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read single sign-on client secret: %w", err)
	}
	ct, err := base64.StdEncoding.DecodeString(sec)
	if err != nil {
		return "", fmt.Errorf("read single sign-on client secret: %w", err)
	}
	pt, err := s.vault.Open(ct)
	if err != nil {
		return "", fmt.Errorf("decrypt single sign-on client secret: %w", err)
	}
	return string(pt), nil
}

// validIssuer checks an issuer URL: https, or http on a loopback address (a local
// stand-in), no query or fragment.
func validIssuer(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "enter the provider's issuer URL, like https://login.microsoftonline.com/<tenant id>/v2.0"
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); (ip != nil && ip.IsLoopback()) || h == "localhost" {
			return ""
		}
	}
	return "the issuer URL must start with https:// (http:// only on this machine's loopback address)"
}

// Save validates in and stores it; the client secret is sealed by the vault. A changed
// issuer needs the client secret again: a stored secret is sent only to the issuer it was
// entered for. actor is the administrator, for the audit log.
func (s *Service) Save(ctx context.Context, actor string, in Input) (Config, error) {
	old, err := s.Config(ctx)
	if err != nil {
		return Config{}, err
	}
	c := in.Config
	c.Issuer = strings.TrimSpace(c.Issuer)
	c.ClientID = strings.TrimSpace(c.ClientID)
	c.Name = strings.TrimSpace(c.Name)
	c.UnmappedRole = strings.TrimSpace(c.UnmappedRole)
	errs := FieldErrors{}
	if c.Issuer != "" {
		if msg := validIssuer(c.Issuer); msg != "" {
			errs["issuer"] = msg
		}
		if c.ClientID == "" {
			errs["client_id"] = "enter the application (client) id the provider gave postroom"
		}
	}
	if len(c.Name) > 60 {
		errs["name"] = "use at most 60 characters"
	}
	newSecret := !in.ClientSecret.IsZero() && in.ClientSecret.Reveal() != ""
	if c.Issuer != "" && !newSecret && old.ClientSecretSet && old.SecretIssuer != c.Issuer {
		errs["client_secret"] = "enter the client secret again: the stored one was entered for another issuer and is sent to no other"
	}
	if c.UnmappedRole != "" && !auth.ValidRole(c.UnmappedRole) {
		errs["unmapped_role"] = "use admin, supervisor, agent or nothing (refuse)"
	}
	teams, err := s.st.ListTeams(ctx)
	if err != nil {
		return Config{}, fmt.Errorf("single sign-on settings: list teams: %w", err)
	}
	var maps []Mapping
	for i, m := range c.Mappings {
		m.Value, m.Role, m.Team = strings.TrimSpace(m.Value), strings.TrimSpace(m.Role), strings.TrimSpace(m.Team)
		if m.Value == "" && m.Role == "" && m.Team == "" {
			continue // an empty row of the form
		}
		key := fmt.Sprintf("mappings[%d]", i)
		switch {
		case m.Value == "":
			errs[key] = "enter the group id or app role value the mapping is for"
		case m.Role == "" && m.Team == "":
			errs[key] = "give the group a role, a team or both"
		case m.Role != "" && !auth.ValidRole(m.Role):
			errs[key] = fmt.Sprintf("role %q is unknown: use admin, supervisor or agent", m.Role)
		case m.Team != "" && !slices.ContainsFunc(teams, func(t store.Team) bool { return strings.EqualFold(t.Name, m.Team) }):
			errs[key] = fmt.Sprintf("there is no team %q: create it first or correct the name", m.Team)
		}
		maps = append(maps, m)
	}
	c.Mappings = maps
	var breakGlass []string
	for _, n := range c.BreakGlass {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(breakGlass, n) {
			breakGlass = append(breakGlass, n)
		}
	}
	c.BreakGlass = breakGlass
	if c.LocalPasswordsOff {
		switch {
		case c.Issuer == "":
			errs["local_passwords_off"] = "configure single sign-on first: without it nobody but the break-glass administrators could sign in"
		case len(c.BreakGlass) == 0:
			errs["break_glass"] = "name at least one break-glass administrator, who may still sign in with a password when the provider is down"
		}
		for _, n := range c.BreakGlass {
			u, err := s.st.UserByUsername(ctx, n)
			switch {
			case store.IsNotFound(err):
				errs["break_glass"] = fmt.Sprintf("there is no user %q: name an existing administrator", n)
			case err != nil:
				return Config{}, fmt.Errorf("single sign-on settings: break-glass user %q: %w", n, err)
			case u.Role != store.RoleAdmin || u.Disabled:
				errs["break_glass"] = fmt.Sprintf("%q is not an enabled administrator: break-glass users must be admins", n)
			}
		}
	}
	if len(errs) == 0 && c.Issuer != "" && (c.Issuer != old.Issuer || !old.Enabled()) {
		if _, err := s.discover(ctx, c.Issuer); err != nil {
			errs["issuer"] = err.Error()
		}
	}
	if len(errs) > 0 {
		return Config{}, errs
	}
	c.SecretIssuer, c.ClientSecretSet = old.SecretIssuer, old.ClientSecretSet
	if newSecret {
		ct, err := s.vault.Seal([]byte(in.ClientSecret.Reveal()))
		if err != nil {
			return Config{}, fmt.Errorf("single sign-on settings: encrypt the client secret: %w", err)
		}
		if err := s.st.SetSetting(ctx, settingSecret, base64.StdEncoding.EncodeToString(ct)); err != nil {
			return Config{}, fmt.Errorf("single sign-on settings: store the client secret: %w", err)
		}
		c.SecretIssuer, c.ClientSecretSet = c.Issuer, true
	}
	b, err := json.Marshal(c)
	if err != nil {
		return Config{}, fmt.Errorf("single sign-on settings: %w", err)
	}
	if err := s.st.SetSetting(ctx, settingConfig, string(b)); err != nil {
		return Config{}, fmt.Errorf("single sign-on settings: store: %w", err)
	}
	newDesc := describe(c)
	if newSecret {
		newDesc += " client_secret=changed"
	}
	if err := s.st.AddAudit(ctx, store.AuditEvent{At: s.now().UTC(), Actor: actor, Action: "sso.update", Object: "sso",
		Old: describe(old), New: newDesc}); err != nil {
		s.logger.ErrorContext(ctx, "audit single sign-on settings", slog.Any("error", err))
	}
	s.logger.InfoContext(ctx, "single sign-on settings saved", slog.String("by", actor), slog.String("issuer", c.Issuer),
		slog.Bool("local_passwords_off", c.LocalPasswordsOff))
	return c, nil
}

// describe is the configuration as the audit log shows it (never the secret).
func describe(c Config) string {
	maps := make([]string, 0, len(c.Mappings))
	for _, m := range c.Mappings {
		maps = append(maps, fmt.Sprintf("%s->%s/%s", m.Value, m.Role, m.Team))
	}
	return fmt.Sprintf("issuer=%q client_id=%q name=%q mappings=[%s] auto_create=%t unmapped_role=%q local_passwords_off=%t break_glass=[%s] client_secret_set=%t",
		c.Issuer, c.ClientID, c.Name, strings.Join(maps, " "), c.AutoCreate, c.UnmappedRole, c.LocalPasswordsOff,
		strings.Join(c.BreakGlass, ","), c.ClientSecretSet)
}

// ErrNotConfigured is returned by Start when single sign-on is off.
var ErrNotConfigured = errors.New("single sign-on is not configured: an administrator sets it up on Users, Single sign-on settings")
