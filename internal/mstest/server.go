package mstest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Audiences (resources) of access tokens. A token is for exactly one of them.
const (
	// GraphAudience is Microsoft Graph: scope https://graph.microsoft.com/.default or
	// https://graph.microsoft.com/Mail.ReadWrite. The stand-in also takes GraphURL() itself
	// as the Graph resource, so a client that derives the scope from its "Graph host"
	// setting works against it.
	GraphAudience = "https://graph.microsoft.com"
	// ExchangeAudience is Exchange Online for app-only IMAP, POP and SMTP (scope
	// https://outlook.office365.com/.default). Delegated Outlook scopes name
	// OutlookAudience instead; introspection accepts both.
	ExchangeAudience = "https://outlook.office365.com"
	// OutlookAudience is the resource of delegated Exchange scopes such as
	// https://outlook.office.com/IMAP.AccessAsUser.All.
	OutlookAudience = "https://outlook.office.com"
)

// Application permissions (app roles) an app registration can hold. The Graph ones go into
// Graph tokens, the Exchange Online ones (*.AccessAsApp, SMTP.SendAsApp) into Exchange
// tokens.
const (
	RoleMailRead        = "Mail.Read"
	RoleMailReadWrite   = "Mail.ReadWrite"
	RoleMailSend        = "Mail.Send"
	RoleUserReadAll     = "User.Read.All"
	RoleIMAPAccessAsApp = "IMAP.AccessAsApp"
	RolePOPAccessAsApp  = "POP.AccessAsApp"
	RoleSMTPSendAsApp   = "SMTP.SendAsApp"
)

// Delegated scopes, as a client requests them (full URIs; "offline_access", "openid",
// "profile" and "email" are the OpenID Connect scopes).
const (
	ScopeGraphMailReadWrite = GraphAudience + "/Mail.ReadWrite"
	ScopeGraphMailSend      = GraphAudience + "/Mail.Send"
	ScopeGraphUserRead      = GraphAudience + "/User.Read"
	ScopeIMAP               = OutlookAudience + "/IMAP.AccessAsUser.All"
	ScopePOP                = OutlookAudience + "/POP.AccessAsUser.All"
	ScopeSMTP               = OutlookAudience + "/SMTP.Send"
	ScopeOfflineAccess      = "offline_access"
)

// Lifecycle events a subscription's lifecycleNotificationUrl can receive (reference §4.4).
const (
	LifecycleReauthorizationRequired = "reauthorizationRequired"
	LifecycleSubscriptionRemoved     = "subscriptionRemoved"
	LifecycleMissed                  = "missed"
)

// Defaults of Options, from the reference.
const (
	DefaultAccessTokenLifetime     = 3599 * time.Second
	DefaultRefreshTokenInactivity  = 90 * 24 * time.Hour
	DefaultAuthCodeLifetime        = 10 * time.Minute
	DefaultMaxConcurrent           = 4
	DefaultRateLimit               = 10000
	DefaultRateWindow              = 10 * time.Minute
	DefaultPageSize                = 10
	DefaultValidationTimeout       = 10 * time.Second
	DefaultMaxSubscriptionLifetime = 4230 * time.Minute // the stricter of Microsoft's two caps (§8.8; newer notes say 10,080)
	// DefaultUploadLimit bytes may be uploaded (PATCH, POST, PUT bodies) per mailbox in
	// DefaultUploadWindow (reference §3.14).
	DefaultUploadLimit  = 150 << 20
	DefaultUploadWindow = 5 * time.Minute
	// MaxBatchRequests is the most requests one $batch may carry.
	MaxBatchRequests = 20
	// MaxInlineRequestBytes is the largest Graph request body (4 MB).
	MaxInlineRequestBytes = 4 << 20
	// MaxUploadChunkBytes is the largest PUT to an upload session (4 MB).
	MaxUploadChunkBytes = 4 << 20
	// MinUploadSessionBytes and MaxUploadSessionBytes bound an upload session's attachment
	// (3 MB to 150 MB).
	MinUploadSessionBytes = 3 << 20
	MaxUploadSessionBytes = 150 << 20
	// MaxMessageBytes is the largest message a mailbox sends (150 MB, the raised limit).
	MaxMessageBytes = 150 << 20
)

// Options configure Start. The zero value is Microsoft's behaviour at full scale; tests
// shorten lifetimes and windows.
type Options struct {
	// Logger gets one debug line per request and info lines for faults; nil discards.
	// Secrets and tokens are never logged.
	Logger *slog.Logger
	// Now is the clock (default time.Now). Advance adds to it.
	Now func() time.Time
	// AccessTokenLifetime is expires_in of access tokens (default 3599 s).
	AccessTokenLifetime time.Duration
	// RefreshTokenInactivity is how long an unused refresh token lives (default 90 days);
	// past it the refresh grant answers AADSTS700082.
	RefreshTokenInactivity time.Duration
	// AuthCodeLifetime is how long an authorization code can be redeemed (default 10 min).
	AuthCodeLifetime time.Duration
	// MaxConcurrent is how many Graph requests one app may have in flight per mailbox
	// before 429 ApplicationThrottled "Application is over its MailboxConcurrency limit."
	// (default 4). Microsoft answers so at times below 4 (§8.9): set 1 to 3 to play that.
	MaxConcurrent int
	// RateLimit requests per RateWindow per app and mailbox (default 10,000 per 10 min);
	// beyond it 429 with Retry-After = seconds until the window ends.
	RateLimit  int
	RateWindow time.Duration
	// PageSize is the default page size of message lists and delta rounds (default 10).
	PageSize int
	// NotificationClient POSTs validation requests, change and lifecycle notifications
	// (default: a client that dials loopback only). URLs must be on 127.0.0.1 or ::1.
	NotificationClient *http.Client
	// ValidationTimeout bounds the subscription validation handshake (default 10 s).
	ValidationTimeout time.Duration
	// MaxSubscriptionLifetime caps expirationDateTime (default 4,230 minutes); beyond it
	// creating or renewing a subscription answers 400 ExtensionError.
	MaxSubscriptionLifetime time.Duration
	// UploadLimit is how many bytes of request bodies (PATCH, POST and PUT, upload-session
	// ranges and $batch members included) one mailbox takes per UploadWindow, whatever the
	// app; beyond it 429 ApplicationThrottled with Retry-After = seconds until the window
	// ends (default 150 MB per 5 minutes).
	UploadLimit  int64
	UploadWindow time.Duration
	// DeltaTokenLifetime is how long a delta or skip token (deltaLink, nextLink) can be
	// followed after it was handed out, by the server's clock (Now plus Advance); after it
	// the token answers as ExpireDeltaTokens makes it. 0: tokens never age (Outlook drops
	// them from a cache after a time it does not state).
	DeltaTokenLifetime time.Duration
	// DeltaExpiredStatus and DeltaExpiredCode are the answer to a delta or skip token that
	// is no longer known: by default 410 and "SyncStateNotFound", as Outlook answers
	// (§8.7). 400 and "syncStateNotFound" is what directory resources answer, which the
	// delta overview also allows for any resource.
	DeltaExpiredStatus int
	DeltaExpiredCode   string
	// Cloud is the Microsoft cloud the stand-in plays (default: the global one). In
	// CloudUSGovL4 and CloudUSGovL5 attachments/createUploadSession does not exist, as in
	// those clouds (§8.3): it answers 400 BadRequest "Resource not found for the segment
	// 'createUploadSession'.", so attachments must go within the 4 MB request limit.
	Cloud string
}

// Clouds Options.Cloud can name; they are postroom's names of Microsoft's clouds.
const (
	CloudGlobal  = ""
	CloudUSGovL4 = "usgov"     // US Government GCC High (L4)
	CloudUSGovL5 = "usgov-dod" // US Government DoD (L5)
)

// Server is a running stand-in. All methods are safe for concurrent use.
type Server struct {
	opts Options
	log  *slog.Logger
	key  *rsa.PrivateKey
	kid  string

	loginLn, graphLn   net.Listener
	loginSrv, graphSrv *http.Server
	loginURL, graphURL string

	closeOnce sync.Once
	bg        sync.WaitGroup     // notification goroutines
	bgCtx     context.Context    // cancelled at Close
	bgCancel  context.CancelFunc // cancels bgCtx

	offset atomic.Int64 // nanoseconds added to Options.Now by Advance

	mu    sync.Mutex
	state *state
	// spns are on-premises Exchange URLs registered as service principal names of Office
	// 365 Exchange Online (hybrid modern authentication), lower case (guarded by mu).
	spns map[string]bool
}

// Start starts a stand-in on two fresh ports of 127.0.0.1.
func Start(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if opts.RefreshTokenInactivity <= 0 {
		opts.RefreshTokenInactivity = DefaultRefreshTokenInactivity
	}
	if opts.AuthCodeLifetime <= 0 {
		opts.AuthCodeLifetime = DefaultAuthCodeLifetime
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = DefaultRateWindow
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.ValidationTimeout <= 0 {
		opts.ValidationTimeout = DefaultValidationTimeout
	}
	if opts.MaxSubscriptionLifetime <= 0 {
		opts.MaxSubscriptionLifetime = DefaultMaxSubscriptionLifetime
	}
	if opts.UploadLimit <= 0 {
		opts.UploadLimit = DefaultUploadLimit
	}
	if opts.UploadWindow <= 0 {
		opts.UploadWindow = DefaultUploadWindow
	}
	if opts.DeltaExpiredStatus == 0 {
		opts.DeltaExpiredStatus = http.StatusGone
	}
	if opts.DeltaExpiredCode == "" {
		opts.DeltaExpiredCode = "SyncStateNotFound"
	}
	switch opts.Cloud {
	case CloudGlobal, CloudUSGovL4, CloudUSGovL5:
	default:
		return nil, fmt.Errorf("mstest: Options.Cloud %q: play %q (global), %q or %q", opts.Cloud, CloudGlobal, CloudUSGovL4, CloudUSGovL5)
	}
	if opts.NotificationClient == nil {
		opts.NotificationClient = loopbackClient()
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("mstest: signing key: %w", err)
	}
	s := &Server{opts: opts, log: opts.Logger, key: key, kid: keyID(&key.PublicKey), state: newState()}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())

	s.loginLn, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mstest: login host listener: %w", err)
	}
	s.graphLn, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = s.loginLn.Close()
		return nil, fmt.Errorf("mstest: Graph host listener: %w", err)
	}
	s.loginURL = "http://" + s.loginLn.Addr().String()
	s.graphURL = "http://" + s.graphLn.Addr().String()
	s.loginSrv = &http.Server{Handler: s.loginHandler(), ReadHeaderTimeout: 10 * time.Second}
	s.graphSrv = &http.Server{Handler: s.graphHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.loginSrv.Serve(s.loginLn) }()
	go func() { _ = s.graphSrv.Serve(s.graphLn) }()
	return s, nil
}

// Close stops both listeners and waits for notifications in flight.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.bgCancel()
		err = errors.Join(shutdown(s.loginSrv), shutdown(s.graphSrv))
		s.bg.Wait()
	})
	return err
}

// shutdown lets srv finish its requests for up to 2 seconds, then closes what is left. A
// connection a client opened but never used (net/http counts it as busy for 5 seconds) or one
// held by a slow request must not make Close fail: this is a stand-in, not a production server.
func shutdown(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return srv.Close()
	}
	return err
}

// LoginURL is the authority host, e.g. http://127.0.0.1:40123 (no trailing slash): the
// token endpoint is LoginURL()/{tenant}/oauth2/v2.0/token.
func (s *Server) LoginURL() string { return s.loginURL }

// GraphURL is the Graph host, e.g. http://127.0.0.1:40124 (no trailing slash, no /v1.0).
func (s *Server) GraphURL() string { return s.graphURL }

// TokenURL is the token endpoint of tenant (a GUID, a domain, "organizations", "common").
func (s *Server) TokenURL(tenant string) string {
	return s.loginURL + "/" + tenant + "/oauth2/v2.0/token"
}

// AuthorizeURL is the authorize endpoint of tenant.
func (s *Server) AuthorizeURL(tenant string) string {
	return s.loginURL + "/" + tenant + "/oauth2/v2.0/authorize"
}

// IntrospectURL is the RFC 7662 introspection endpoint for Dovecot's oauth2 passdb
// (introspection_mode = post): it answers {"active": true, "email": MAILBOX, ...} only for a
// valid, unexpired, unrevoked Exchange Online token that may open MAILBOX, else
// {"active": false}.
//
// Dovecot sends only the token, not the mailbox the client asked for (SASL user=), and
// checks that the answer's email equals it. So: a delegated token answers its user's UPN;
// an app token answers the one mailbox its app holds FullAccess on (App.GrantFullAccess),
// and is inactive when the app holds FullAccess on none or on several (use
// IntrospectURLFor then).
func (s *Server) IntrospectURL() string { return s.loginURL + "/introspect" }

// IntrospectURLFor is IntrospectURL for one mailbox: a token is active only if it may open
// mailbox (an app token: role + FullAccess; a delegated token: the user is mailbox or holds
// FullAccess on it), and the answer's email is mailbox.
func (s *Server) IntrospectURLFor(mailbox string) string {
	return s.IntrospectURL() + "?mailbox=" + queryEscape(mailbox)
}

// now is the server's clock. It takes no lock, so it works inside and outside s.mu.
func (s *Server) now() time.Time { return s.opts.Now().Add(time.Duration(s.offset.Load())) }

// nowLocked is now; the name says the caller holds s.mu.
func (s *Server) nowLocked() time.Time { return s.now() }

// Advance moves the server's clock forward by d: tokens, secrets, codes, refresh tokens,
// subscriptions and throttle windows age by d.
func (s *Server) Advance(d time.Duration) { s.offset.Add(int64(d)) }

// AddServicePrincipalName registers an Exchange Server's external URL (https://mail.contoso.com)
// as a service principal name of Office 365 Exchange Online, as the hybrid modern
// authentication setup does: tokens may then be asked for it (u + "/.default",
// u + "/EWS.AccessAsUser.All") with Exchange Online's permissions, and carry u as their
// audience.
func (s *Server) AddServicePrincipalName(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spns == nil {
		s.spns = map[string]bool{}
	}
	s.spns[strings.ToLower(strings.TrimSuffix(u, "/"))] = true
}
