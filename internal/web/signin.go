package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// Delegated sign-in ("Sign in with Microsoft"): the authorization code grant with PKCE for
// mailboxes whose account signs in (store.AuthOAuthDelegated).
//
//	GET  /mailboxes/{id}/signin  explains the sign-in (the account, the redirect URI to
//	                             register, the permissions) with the button; the "sign in
//	                             again" link of a mailbox whose sign-in died leads here
//	POST /mailboxes/{id}/signin  (the button, CSRF) makes a state and a PKCE verifier, keeps
//	                             them in the store (store.PendingSignIn) bound to the
//	                             admin's session and the mailbox for
//	                             credential.SignInLifetime, and redirects the browser to
//	                             the provider's authorize URL
//	GET  /oauth/callback         the redirect URI: takes the state (once), checks the
//	                             session, shows the provider's error with advice, or
//	                             redeems the code, stores the refresh token and the
//	                             account (mailbox.Service.SetSignedIn) and goes back to
//	                             the mailbox with "Signed in as ..."
//
// The pending sign-ins live in the store, not in this process: with several nodes on one
// PostgreSQL database behind a load balancer, the callback may reach any node, and a
// restart between the button and the callback loses nothing. The store keeps only the
// SHA-256 of the state (it travels in URLs) and the verifier sealed by the vault (every
// node has the same key); taking a state deletes it in one statement, so a sign-in is
// finished once even when two nodes get its callback at the same moment. A state that is
// unknown, used, expired or another session's makes the page say to start again, and
// nothing is changed.

// callbackPath is the path of the redirect URI.
const callbackPath = "/oauth/callback"

// maxPendingSignIns bounds the sign-ins in progress, so that a script pressing the button
// cannot fill the database: far more than administrators signing mailboxes in at once.
const maxPendingSignIns = 1000

func (h *handler) signInRoutes(mux *pageMux) {
	adm := store.RoleAdmin
	mux.page("GET /mailboxes/{id}/signin", adm, h.signInPage)
	mux.page("POST /mailboxes/{id}/signin", adm, h.signInStart)
	mux.page("GET "+callbackPath, adm, h.signInCallback)
}

// redirectURI is the sign-in's redirect URI: the public URL's, or this request's scheme
// and host.
func (h *handler) redirectURI(r *http.Request) string {
	if h.publicURL != "" {
		return h.publicURL + callbackPath
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + callbackPath
}

// signInOrigin is the origin of m's authorize URL ("" when it has none), which the page
// with its sign-in button must allow as a form target.
func signInOrigin(m store.Mailbox) string {
	if m.Auth != store.AuthOAuthDelegated {
		return ""
	}
	_, plan, err := credential.SignInScopes(m)
	if err != nil || plan.AuthorizeURL == "" {
		return ""
	}
	u, err := url.Parse(plan.AuthorizeURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// signInButton is the label of m's sign-in button.
func signInButton(m store.Mailbox) string {
	if m.OAuth.Provider == credential.ProviderCustom {
		return "Sign in with the provider"
	}
	if m.OAuth.Provider == credential.ProviderGoogle {
		return "Sign in with Google"
	}
	return "Sign in with Microsoft"
}

// signInData is the sign-in page: the start (Failure nil) or a sign-in that did not finish.
type signInData struct {
	Mailbox     store.Mailbox
	Button      string
	RedirectURI string
	Hint        string   // the account the sign-in suggests
	Scopes      []string // the permissions asked for
	Origin      string   // where the button leads
	// Problem says why the sign-in cannot start (settings missing); the button is hidden.
	Problem string
	// Heading and Failure describe a sign-in that did not finish; Message when there is no
	// provider error to show (a stale or foreign state).
	Heading string
	Failure *credential.SignInError
	Message string
}

// startData fills the start page of m.
func (h *handler) startData(r *http.Request, m store.Mailbox) signInData {
	d := signInData{Mailbox: m, Button: signInButton(m), RedirectURI: h.redirectURI(r), Origin: signInOrigin(m)}
	switch {
	case h.signIn == nil || h.mailboxes == nil:
		d.Problem = "Delegated sign-in is not available on this server. Ask the operator, or paste a refresh token through the API."
	case m.Auth != store.AuthOAuthDelegated:
		d.Problem = "This mailbox does not sign in with a person's account. Edit it and choose “A person signs in” to use this sign-in."
	default:
		st, err := credential.StartSignIn(m, d.RedirectURI)
		if err != nil {
			d.Problem = err.Error() + "."
			break
		}
		d.Scopes = st.Scopes
		if u, err := url.Parse(st.URL); err == nil {
			d.Hint = u.Query().Get("login_hint")
		}
	}
	return d
}

func (h *handler) renderSignIn(w http.ResponseWriter, r *http.Request, v viewer, status int, d signInData) {
	title := d.Button
	if d.Heading != "" {
		title = d.Heading
	}
	pd := h.data(v, title, "mailboxes", d)
	if d.Origin != "" && d.Problem == "" {
		pd.FormTargets = []string{d.Origin}
	}
	h.render(w, r, status, "signin", pd)
}

func (h *handler) signInPage(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadMailbox(w, r)
	if !ok {
		return
	}
	h.renderSignIn(w, r, v, http.StatusOK, h.startData(r, m))
}

// signInStart is the button: it keeps the sign-in and sends the browser to the provider.
func (h *handler) signInStart(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadMailbox(w, r)
	if !ok {
		return
	}
	d := h.startData(r, m)
	if d.Problem != "" {
		h.renderSignIn(w, r, v, http.StatusBadRequest, d)
		return
	}
	st, err := credential.StartSignIn(m, d.RedirectURI)
	if err != nil { // startData succeeded a moment ago with the same mailbox
		h.serverError(w, r, "start the sign-in", err)
		return
	}
	sealed, err := h.signIn.SealVerifier(st.Verifier)
	if err != nil {
		h.serverError(w, r, "start the sign-in", err)
		return
	}
	now := h.now()
	err = h.st.AddPendingSignIn(r.Context(), store.PendingSignIn{State: st.State, SessionHash: v.Session.TokenHash, MailboxID: m.ID,
		Verifier: sealed, RedirectURI: st.RedirectURI, ExpiresAt: now.Add(credential.SignInLifetime), CreatedAt: now}, maxPendingSignIns, now)
	switch {
	case errors.Is(err, store.ErrTooManySignIns):
		h.errorPage(w, r, http.StatusServiceUnavailable, "Too many sign-ins in progress",
			"Too many sign-ins were started in the last minutes. Wait ten minutes and press the button again.")
		return
	case store.IsNotFound(err): // deleted a moment ago
		h.mailboxNotFound(w, r)
		return
	case err != nil:
		h.serverError(w, r, "start the sign-in", err)
		return
	}
	h.logger.InfoContext(r.Context(), "delegated sign-in started", slog.String("mailbox", m.Name), slog.String("user", v.User.Username),
		slog.String("redirect_uri", st.RedirectURI))
	http.Redirect(w, r, st.URL, http.StatusSeeOther)
}

// signInCallback is the redirect URI.
func (h *handler) signInCallback(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	q := r.URL.Query()
	p, err := h.st.TakePendingSignIn(ctx, q.Get("state"), h.now())
	if err != nil && !store.IsNotFound(err) {
		h.serverError(w, r, "finish the sign-in", err)
		return
	}
	if err != nil || p.SessionHash != v.Session.TokenHash {
		h.logger.WarnContext(ctx, "sign-in callback refused: unknown, used or expired state, or another session", slog.String("user", v.User.Username))
		h.renderSignIn(w, r, v, http.StatusBadRequest, signInData{Heading: "This sign-in cannot be finished",
			Message: "The answer of the sign-in page does not belong to a sign-in started in this browser session: it was used already, " +
				"more than ten minutes passed, or it was started elsewhere. Nothing was changed. Go back to the mailbox and press the sign-in button again."})
		return
	}
	m, err := h.st.Mailbox(ctx, p.MailboxID)
	if store.IsNotFound(err) {
		h.mailboxNotFound(w, r)
		return
	}
	if err != nil {
		h.serverError(w, r, "read the mailbox", err)
		return
	}
	failed := func(e *credential.SignInError) {
		h.logger.WarnContext(ctx, "delegated sign-in did not finish", slog.String("mailbox", m.Name),
			slog.String("error", e.Code), slog.String("aadsts", e.AADSTS))
		d := h.startData(r, m)
		d.Heading, d.Failure = "Sign-in not finished", e
		h.renderSignIn(w, r, v, http.StatusBadRequest, d)
	}
	if e := credential.CallbackError(q, p.RedirectURI); e != nil {
		failed(e)
		return
	}
	code := q.Get("code")
	if code == "" {
		failed(&credential.SignInError{Code: "no_code", Advice: "the provider sent the browser back without a code: sign in again"})
		return
	}
	if h.signIn == nil || h.mailboxes == nil || m.Auth != store.AuthOAuthDelegated {
		failed(&credential.SignInError{Code: "not_delegated",
			Advice: "the mailbox no longer signs in with a person's account (its settings changed meanwhile): nothing was stored"})
		return
	}
	verifier, err := h.signIn.OpenVerifier(p.Verifier)
	if err != nil {
		h.serverError(w, r, "finish the sign-in", err)
		return
	}
	res, err := h.signIn.Redeem(ctx, m, code, verifier, p.RedirectURI)
	var se *credential.SignInError
	switch {
	case errors.As(err, &se):
		failed(se)
		return
	case err != nil:
		h.serverError(w, r, "finish the sign-in", err)
		return
	}
	if _, err := h.mailboxes.SetSignedIn(ctx, v.User.Username, m.ID, res.Account, res.RefreshToken); err != nil {
		var ve *mailbox.ValidationError
		if errors.As(err, &ve) {
			failed(&credential.SignInError{Code: "not_delegated", Advice: ve.Fields["auth"]})
			return
		}
		h.serverError(w, r, "store the sign-in", err)
		return
	}
	http.Redirect(w, r, listView{Selected: m.ID}.URL("signed-in"), http.StatusSeeOther)
}
