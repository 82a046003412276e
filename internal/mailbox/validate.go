package mailbox

import (
	"fmt"
	"net"
	"net/mail"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Protocols.
const (
	IMAP = "imap"
	POP3 = "pop3"
	SMTP = "smtp"
)

// Security settings.
const (
	SecurityTLS      = "tls"
	SecurityStartTLS = "starttls"
	SecurityNone     = "none"
)

// Limits of the mailbox form (the seed guide's rules).
const (
	maxNameLen       = 40 // Mailbox Name: at most 40 characters
	minMaxSizeMB     = 5  // Max size: whole MB from 5 ...
	maxMaxSizeMB     = 20 // ... to 20
	defaultMaxSizeMB = 5
	minPoll          = 10 * time.Second
	maxPoll          = time.Hour
	defaultPoll      = 60 * time.Second
	maxHostLen       = 253 // RFC 1035 §2.3.4
	maxFolderLen     = 255
	maxDisplayLen    = 100
)

// nameRe is the seed's rule for Mailbox Name: letters, digits, "@", "_" and ".".
var nameRe = regexp.MustCompile(`^[A-Za-z0-9@_.]+$`)

// hostRe accepts DNS names (RFC 1123 labels).
var hostRe = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

// Input is a mailbox as an administrator submits it (web form, API JSON, CLI flags).
type Input struct {
	Name         string // create only; on update "" or unchanged
	Direction    string // store.Inbound or store.Outbound
	Protocol     string // inbound: imap, pop3; outbound: smtp
	Address      string
	Host         string
	Port         int // 0: the default for protocol and security
	Security     string
	Login        string
	Password     *vault.Secret // nil: keep the stored one
	Folder       string
	AfterAction  string
	MoveFolder   string
	PollInterval time.Duration
	MaxSizeMB    int
	IsDefault    bool

	// Auth is the sign-in method (store.AuthPassword by default) and OAuth its settings
	// (OAuth.Account is not taken from input: a sign-in sets it).
	Auth     string
	OAuth    store.OAuth
	GraphURL string
	// AutodiscoverHost is, for an EWS mailbox without a host, the only host autodiscover
	// asks (host or host:port, https).
	AutodiscoverHost string
	// Write-only OAuth secrets; nil keeps the stored one.
	ClientSecret *vault.Secret
	Certificate  *vault.Secret // PEM: the app's certificate and private key
	RefreshToken *vault.Secret // custom provider: a refresh token obtained elsewhere
}

// FromMailbox returns the Input that reproduces m (without a password).
func FromMailbox(m store.Mailbox) Input {
	return Input{
		Name: m.Name, Direction: m.Direction, Protocol: m.Protocol, Address: m.Address, Host: m.Host, Port: m.Port,
		Security: m.Security, Login: m.Login, Folder: m.Folder, AfterAction: m.AfterAction, MoveFolder: m.MoveFolder,
		PollInterval: m.PollInterval, MaxSizeMB: m.MaxSizeMB, IsDefault: m.IsDefault,
		Auth: m.Auth, OAuth: m.OAuth, GraphURL: m.GraphURL, AutodiscoverHost: m.AutodiscoverHost,
	}
}

// ValidationError lists what is wrong, by field, keyed by the API's JSON field names.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e.Fields[k])
	}
	return "the mailbox has errors: " + strings.Join(parts, "; ")
}

func (e *ValidationError) add(field, msg string) {
	if _, ok := e.Fields[field]; !ok {
		e.Fields[field] = msg
	}
}

// DefaultPort is the usual port of a protocol with a security setting.
func DefaultPort(protocol, security string) int {
	switch protocol {
	case IMAP:
		if security == SecurityTLS {
			return 993 // RFC 8314
		}
		return 143
	case POP3:
		if security == SecurityTLS {
			return 995 // RFC 8314
		}
		return 110
	case SMTP:
		switch security {
		case SecurityTLS:
			return 465 // RFC 8314
		case SecurityStartTLS:
			return 587 // RFC 6409
		}
		return 25
	}
	return 0
}

// IsLoopback reports whether host names this machine (127.0.0.0/8, ::1, localhost).
func IsLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// normalize trims the input and fills the defaults; it returns the mailbox to store.
func normalize(in Input) store.Mailbox {
	m := store.Mailbox{
		Name:         strings.TrimSpace(in.Name),
		Direction:    strings.ToLower(strings.TrimSpace(in.Direction)),
		Protocol:     strings.ToLower(strings.TrimSpace(in.Protocol)),
		Address:      strings.TrimSpace(in.Address),
		Host:         strings.TrimSpace(in.Host),
		Port:         in.Port,
		Security:     strings.ToLower(strings.TrimSpace(in.Security)),
		Login:        strings.TrimSpace(in.Login),
		Folder:       strings.TrimSpace(in.Folder),
		AfterAction:  strings.ToLower(strings.TrimSpace(in.AfterAction)),
		MoveFolder:   strings.TrimSpace(in.MoveFolder),
		PollInterval: in.PollInterval,
		MaxSizeMB:    in.MaxSizeMB,
		IsDefault:    in.IsDefault,

		AutodiscoverHost: strings.ToLower(strings.TrimSuffix(strings.TrimSpace(in.AutodiscoverHost), ".")),
	}
	if m.Protocol == "" {
		switch m.Direction {
		case store.Inbound:
			m.Protocol = IMAP
		case store.Outbound:
			m.Protocol = SMTP
		}
	}
	if m.Security == "" {
		m.Security = SecurityTLS
		if m.Protocol == SMTP {
			m.Security = SecurityStartTLS
		}
	}
	if m.Port == 0 {
		m.Port = DefaultPort(m.Protocol, m.Security)
	}
	if m.MaxSizeMB == 0 {
		m.MaxSizeMB = defaultMaxSizeMB
	}
	if m.PollInterval == 0 && m.Direction == store.Inbound {
		m.PollInterval = defaultPoll
	}
	if m.Address == "" && strings.Contains(m.Login, "@") {
		m.Address = m.Login
	}
	switch m.Protocol {
	case IMAP:
		if m.Folder == "" {
			m.Folder = "INBOX"
		}
		if m.AfterAction == "" {
			m.AfterAction = store.AfterMarkRead
		}
	case POP3:
		if m.AfterAction == "" {
			m.AfterAction = store.AfterDelete
		}
	case EWS:
		normalizeEWS(in, &m)
	}
	if m.Direction == store.Outbound {
		m.IsDefault = in.IsDefault
	} else {
		m.IsDefault = false
	}
	normalizeAuth(in, &m)
	return m
}

// secretsAt tells which secrets are given with the input or already stored.
type secretsAt struct {
	password, clientSecret, certificate bool
	certificateErr                      string // why a given certificate cannot be used
	serviceAccountKeyErr                string // why a given Google key file cannot be used
}

// validate checks m (already normalized) against every rule but uniqueness. have tells
// which secrets are given or already stored.
func validate(m store.Mailbox, have secretsAt) *ValidationError {
	e := &ValidationError{Fields: map[string]string{}}
	switch {
	case m.Name == "":
		e.add("name", "enter a mailbox name")
	case len(m.Name) > maxNameLen:
		e.add("name", fmt.Sprintf("use at most %d characters (this one has %d)", maxNameLen, len(m.Name)))
	case !nameRe.MatchString(m.Name):
		e.add("name", "use only letters, digits, @, _ and . (no spaces)")
	}
	switch m.Direction {
	case store.Inbound:
		switch m.Protocol {
		case IMAP, POP3, Graph, EWS, Gmail:
		default:
			e.add("protocol", "choose imap, pop3, graph or ews for an inbound mailbox")
		}
	case store.Outbound:
		if m.Protocol != SMTP && m.Protocol != Graph && m.Protocol != EWS && m.Protocol != Gmail {
			e.add("protocol", "an outbound mailbox sends with smtp, graph, ews or gmail")
		}
	default:
		e.add("direction", "choose inbound or outbound")
	}
	switch {
	case m.Protocol == Graph: // no host: Graph's host is part of the OAuth settings
	case m.Protocol == EWS && m.Host == "": // autodiscover finds the server from the address
	case m.Host == "":
		e.add("host", "enter the mail server's host name, e.g. mail.example.com")
	case len(m.Host) > maxHostLen || (net.ParseIP(strings.Trim(m.Host, "[]")) == nil && !hostRe.MatchString(m.Host)):
		e.add("host", "enter a host name (mail.example.com) or an IP address, without spaces, scheme or port")
	}
	if (m.Port < 1 || m.Port > 65535) && m.Protocol != Graph {
		e.add("port", "use a port number from 1 to 65535")
	}
	switch m.Security {
	case "":
		if m.Protocol != Graph {
			e.add("security", "choose tls, starttls or none")
		}
	case SecurityTLS, SecurityStartTLS:
	case SecurityNone:
		if m.Host != "" && !IsLoopback(m.Host) {
			e.add("security", "plain text (none) is allowed only for a server on this machine (127.0.0.1): choose tls or starttls")
		}
	default:
		e.add("security", "choose tls, starttls or none")
	}
	if m.Direction == store.Inbound && m.Login == "" && m.Protocol != Graph {
		e.add("login", "enter the login name of the mailbox")
	}
	if m.Login != "" && !have.password && (m.Auth == store.AuthPassword || m.Auth == store.AuthOAuthROPC) {
		e.add("password", "enter the password of this login")
	}
	validateGmail(m, e)
	validateAuth(m, have, e)
	if m.Address != "" {
		if a, err := mail.ParseAddress(m.Address); err != nil || a.Address != m.Address {
			e.add("address", "enter one email address, like support@example.com")
		}
	} else if m.Direction == store.Outbound {
		e.add("address", "enter the email address replies are sent from")
	} else if m.Protocol == Graph {
		e.add("address", "enter the address of the Microsoft 365 mailbox to read, like support@contoso.com")
	}
	if m.AutodiscoverHost != "" && m.Protocol != EWS {
		e.add("autodiscover_host", "only an EWS mailbox finds its server by autodiscover: leave the autodiscover host empty")
	}
	switch m.Protocol {
	case EWS:
		validateEWS(m, e)
	case Graph:
		if len(m.Folder) > maxFolderLen || strings.ContainsAny(m.Folder, "\r\n\x00") {
			e.add("folder", "enter a folder name such as Inbox")
		}
		if m.Direction == store.Inbound {
			switch m.AfterAction {
			case store.AfterMarkRead, store.AfterKeep:
			case store.AfterMove:
				if m.MoveFolder == "" {
					e.add("move_folder", "enter the folder processed messages are moved to")
				} else if strings.EqualFold(m.MoveFolder, m.Folder) {
					e.add("move_folder", "choose another folder than the one being read")
				}
			default:
				e.add("after_action", "choose mark_read, move or keep for a Graph mailbox")
			}
		}
	case IMAP:
		if len(m.Folder) > maxFolderLen || strings.ContainsAny(m.Folder, "\r\n\x00") {
			e.add("folder", "enter a folder name such as INBOX")
		}
		switch m.AfterAction {
		case store.AfterMarkRead, store.AfterDelete:
		case store.AfterMove:
			if m.MoveFolder == "" {
				e.add("move_folder", "enter the folder processed messages are moved to")
			} else if m.MoveFolder == m.Folder {
				e.add("move_folder", "choose another folder than the one being read")
			}
		default:
			e.add("after_action", "choose mark_read, move or delete")
		}
	case POP3:
		if m.Folder != "" {
			e.add("folder", "POP3 has no folders: leave it empty")
		}
		if m.AfterAction != store.AfterDelete && m.AfterAction != store.AfterKeep {
			e.add("after_action", "choose delete or keep for POP3")
		}
	case SMTP:
		if m.Folder != "" || m.AfterAction != "" || m.MoveFolder != "" {
			e.add("folder", "an outbound mailbox has no folder or after-processing action")
		}
	}
	if m.MaxSizeMB < minMaxSizeMB || m.MaxSizeMB > maxMaxSizeMB {
		e.add("max_size_mb", fmt.Sprintf("use a whole number of MB from %d to %d", minMaxSizeMB, maxMaxSizeMB))
	}
	if m.Direction == store.Inbound && (m.PollInterval < minPoll || m.PollInterval > maxPoll) {
		e.add("poll_interval_seconds", fmt.Sprintf("use %d to %d seconds", int(minPoll.Seconds()), int(maxPoll.Seconds())))
	}
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// validateFrom checks a From address and its display name.
func validateFrom(address, display string) *ValidationError {
	e := &ValidationError{Fields: map[string]string{}}
	if a, err := mail.ParseAddress(address); err != nil || a.Address != address {
		e.add("address", "enter one email address, like sales@example.com")
	}
	switch {
	case strings.TrimSpace(display) == "":
		e.add("display_name", "enter the name customers see, like Example Support")
	case len(display) > maxDisplayLen || strings.ContainsAny(display, "\r\n\x00<>"):
		e.add("display_name", fmt.Sprintf("use at most %d characters, without < or >", maxDisplayLen))
	}
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}
