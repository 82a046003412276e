package credential

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// SASL mechanisms for OAuth 2.0 bearer logins.
const (
	// MechXOAUTH2 is Google's and Microsoft's mechanism (Microsoft 365 offers only it);
	// go-sasl has no client for it, so XOAuth2Client is ours.
	MechXOAUTH2 = "XOAUTH2"
	// MechOAUTHBEARER is RFC 7628's mechanism.
	MechOAUTHBEARER = sasl.OAuthBearer
)

// maxChallengeShown bounds how much of a non-JSON error challenge an error message quotes.
const maxChallengeShown = 200

// PickOAuthMechanism returns the mechanism to log in with among those the server offers
// (case does not matter): XOAUTH2 when offered, because Microsoft supports only it and
// servers that offer both accept either, else OAUTHBEARER, else "".
func PickOAuthMechanism(offered []string) string {
	var bearer bool
	for _, m := range offered {
		switch strings.ToUpper(m) {
		case MechXOAUTH2:
			return MechXOAUTH2
		case MechOAUTHBEARER:
			bearer = true
		}
	}
	if bearer {
		return MechOAUTHBEARER
	}
	return ""
}

// NewOAuthClient returns the SASL client of mech (MechXOAUTH2 or MechOAUTHBEARER) that
// presents token for user. host and port go into OAUTHBEARER's initial response
// (RFC 7628 §3.1); XOAUTH2 has no place for them.
//
// A server that refuses the token answers with an error challenge (RFC 7628 §3.2.2, and
// the same JSON for XOAUTH2). The client then returns a *ChallengeError from Next instead
// of the empty (XOAUTH2) or %x01 (OAUTHBEARER) response the mechanisms ask for: the caller
// cancels the exchange ("*", RFC 9051 §6.2.2, RFC 5034 §4) or drops the connection. Both
// end the exchange as a failure, and no library can get the empty response wrong (go-imap
// v2 sends it as "=", which Dovecot answers with BAD).
func NewOAuthClient(mech, user, token, host string, port int) sasl.Client {
	if strings.EqualFold(mech, MechXOAUTH2) {
		return &XOAuth2Client{Username: user, Token: token}
	}
	return &oauthBearerClient{start: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
		Username: user, Token: token, Host: host, Port: port,
	})}
}

// XOAuth2Client is the XOAUTH2 mechanism as Google and Microsoft document it: one
// initial response "user=U^Aauth=Bearer T^A^A"; a failure comes as a JSON challenge.
type XOAuth2Client struct {
	Username, Token string
}

// Start returns the initial response.
func (a *XOAuth2Client) Start() (mech string, ir []byte, err error) {
	if strings.ContainsRune(a.Username, '\x01') || strings.ContainsRune(a.Token, '\x01') {
		return "", nil, fmt.Errorf("xoauth2: user name or token contains ^A")
	}
	return MechXOAUTH2, []byte("user=" + a.Username + "\x01auth=Bearer " + a.Token + "\x01\x01"), nil
}

// Next is called only when the server refused the token: it returns a *ChallengeError.
func (a *XOAuth2Client) Next(challenge []byte) ([]byte, error) {
	return nil, newChallengeError(MechXOAUTH2, challenge)
}

// oauthBearerClient is go-sasl's OAUTHBEARER client with our error challenge handling.
type oauthBearerClient struct {
	start sasl.Client
}

func (a *oauthBearerClient) Start() (string, []byte, error) { return a.start.Start() }

func (a *oauthBearerClient) Next(challenge []byte) ([]byte, error) {
	return nil, newChallengeError(MechOAUTHBEARER, challenge)
}

// ChallengeError is the server's refusal of an OAuth token, read from its error challenge
// (RFC 7628 §3.2.2): {"status":"401","schemes":"bearer","scope":"mail"}. It carries no
// secret: the challenge never holds the token.
type ChallengeError struct {
	Mechanism string
	// Status, Schemes and Scope are the challenge's fields; Status is an HTTP status
	// ("401": the token is invalid or expired) or an OAuth error code.
	Status, Schemes, Scope string
	// Raw is the decoded challenge.
	Raw []byte
}

func newChallengeError(mech string, challenge []byte) *ChallengeError {
	e := &ChallengeError{Mechanism: mech, Raw: challenge}
	var body struct {
		Status  string `json:"status"`
		Schemes string `json:"schemes"`
		Scope   string `json:"scope"`
	}
	if json.Unmarshal(challenge, &body) == nil {
		e.Status, e.Schemes, e.Scope = body.Status, body.Schemes, body.Scope
	}
	return e
}

func (e *ChallengeError) Error() string {
	switch {
	case e.Status != "" && e.Scope != "":
		return fmt.Sprintf("the server refused the %s token (status %s, scope %q)", e.Mechanism, e.Status, e.Scope)
	case e.Status != "":
		return fmt.Sprintf("the server refused the %s token (status %s)", e.Mechanism, e.Status)
	}
	raw := e.Raw
	if len(raw) > maxChallengeShown {
		raw = raw[:maxChallengeShown]
	}
	return fmt.Sprintf("the server refused the %s token (challenge %q)", e.Mechanism, raw)
}
