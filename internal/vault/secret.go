package vault

import (
	"fmt"
	"log/slog"
)

// mask is what every printing path shows instead of a secret.
const mask = "***"

// Secret holds a plaintext secret (a password, a client secret, a refresh token) in memory.
// Every way of printing or encoding it — String, GoString, fmt with any verb, JSON, text
// encoding, slog — shows "***"; only Reveal returns the value. The zero value is "no secret".
//
// The value sits behind a pointer so that even fmt's reflection on an unexported field of
// type Secret, which bypasses the methods, prints an address and not the text. Two Secrets
// compare equal with == only when they are copies of the same NewSecret.
type Secret struct {
	v *string
}

// NewSecret wraps s. NewSecret("") is the zero Secret.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// Reveal returns the plaintext. Call it only where the secret is used (a login, an
// encryption), never to print or log it.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether no secret is held.
func (s Secret) IsZero() bool { return s.v == nil }

// String implements fmt.Stringer.
func (s Secret) String() string { return mask }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return mask }

// Format implements fmt.Formatter so that every verb and flag prints the mask.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(mask)) }

// MarshalJSON implements json.Marshaler: "***".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + mask + `"`), nil }

// MarshalText implements encoding.TextMarshaler: ***.
func (s Secret) MarshalText() ([]byte, error) { return []byte(mask), nil }

// UnmarshalText implements encoding.TextUnmarshaler, so that a secret can arrive in a JSON
// request or a config file. Encoding it again gives "***", never the value.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = NewSecret(string(b))
	return nil
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(mask) }
