package connector

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestTokenError: a failure to get a token is temporary unless the token source already
// said what it is (a grant that is gone) or the caller gave up.
func TestTokenError(t *testing.T) {
	gone := &Error{Kind: KindAuth, Op: "oauth refresh", Err: errors.New("invalid_grant"), Advice: "sign in again"}
	var ce *Error
	if got := TokenError("imap oauth token", fmt.Errorf("token: %w", gone)); !errors.As(got, &ce) || ce != gone {
		t.Errorf("a grant that is gone became %v, want its own error with its kind and advice", got)
	}
	if got := TokenError("smtp oauth token", context.Canceled); got != context.Canceled {
		t.Errorf("a cancelled context became %v", got)
	}
	unreachable := errors.New("dial tcp 127.0.0.1:9: connection refused")
	if got := TokenError("pop3 oauth token", unreachable); !errors.As(got, &ce) || ce.Kind != KindNetwork ||
		ce.Op != "pop3 oauth token" || !errors.Is(got, unreachable) || ce.Advice == "" {
		t.Errorf("an unreachable token endpoint = %#v, want a temporary *Error with advice around it", got)
	}
}
