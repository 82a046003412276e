package automsg

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// limitsKey is the setting that holds Limits as JSON.
const limitsKey = "auto_message_limits"

// Limits bound the automatic messages to one customer address within WindowS seconds:
// at most PerConversation in one conversation and PerAddress in all. Together with never
// answering a program's mail they stop auto-reply wars.
type Limits struct {
	PerConversation int   `json:"per_conversation"`
	PerAddress      int   `json:"per_address"`
	WindowS         int64 `json:"window_s"`
}

// DefaultLimits: one automatic message per conversation and three per address a day.
var DefaultLimits = Limits{PerConversation: 1, PerAddress: 3, WindowS: 24 * 3600}

// Validate checks the limits; the error says what to enter.
func (l Limits) Validate() error {
	switch {
	case l.PerConversation < 1 || l.PerConversation > 100:
		return fmt.Errorf("%w: per_conversation: enter how many automatic messages one conversation may get, 1 to 100", ErrInvalid)
	case l.PerAddress < 1 || l.PerAddress > 1000:
		return fmt.Errorf("%w: per_address: enter how many automatic messages one address may get, 1 to 1000", ErrInvalid)
	case l.WindowS < 60 || l.WindowS > 30*24*3600:
		return fmt.Errorf("%w: window_s: enter the window in seconds, 60 (a minute) to 2592000 (30 days)", ErrInvalid)
	}
	return nil
}

// Store returns the limits in the form the store applies them.
func (l Limits) Store() store.AutoLimit {
	return store.AutoLimit{PerConversation: l.PerConversation, PerAddress: l.PerAddress, Window: time.Duration(l.WindowS) * time.Second}
}

// LoadLimits reads the limits (DefaultLimits when none are saved).
func LoadLimits(ctx context.Context, st store.Settings) (Limits, error) {
	v, err := st.Setting(ctx, limitsKey)
	if store.IsNotFound(err) {
		return DefaultLimits, nil
	}
	if err != nil {
		return Limits{}, fmt.Errorf("load automatic message limits: %w", err)
	}
	l := DefaultLimits
	if err := json.Unmarshal([]byte(v), &l); err != nil || l.Validate() != nil {
		return DefaultLimits, nil // a damaged setting falls back to the safe defaults
	}
	return l, nil
}

// SaveLimits validates and saves the limits.
func SaveLimits(ctx context.Context, st store.Settings, l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	b, _ := json.Marshal(l)
	if err := st.SetSetting(ctx, limitsKey, string(b)); err != nil {
		return fmt.Errorf("save automatic message limits: %w", err)
	}
	return nil
}
