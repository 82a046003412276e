package mailbox

import (
	"net"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/store"
)

// EWS is the protocol of Exchange Server mailboxes read and sent over Exchange Web
// Services. The server is Host, Port and Security (tls: https, none: http to this machine
// only); the endpoint is EWSURL's /EWS/Exchange.asmx on it. An empty Host means "find the
// server by autodiscover from the address" (ews.Discover: the address's domain and
// autodiscover.<domain>, over https): a set Host is used as it is, without autodiscover,
// as an administrator who types a server in Outlook's manual setup expects. The mailbox is
// Address, opened by Login as a delegate (Full Access), or impersonated when delegate
// access is refused.
const EWS = "ews"

// EWSPath is where Exchange serves EWS.
const EWSPath = "/EWS/Exchange.asmx"

// ewsMoveFolders are the distinguished folders an EWS mailbox can move handled mail to.
var ewsMoveFolders = []string{"deleteditems", "junkemail"}

// EWSURL is the EWS endpoint of mailbox m: https://host[:port]/EWS/Exchange.asmx (http
// when Security is none); "" when Host is empty: autodiscover finds it (EWSDiscoverKey).
func EWSURL(m store.Mailbox) string {
	if m.Host == "" {
		return ""
	}
	scheme, def := "https", 443
	if m.Security == SecurityNone {
		scheme, def = "http", 80
	}
	host := m.Host
	if m.Port != 0 && m.Port != def {
		host = net.JoinHostPort(strings.Trim(m.Host, "[]"), strconv.Itoa(m.Port))
	} else if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host + EWSPath
}

// normalizeEWS fills an EWS mailbox's defaults: port 443 (80 without TLS), the inbox,
// marked read after storing.
func normalizeEWS(in Input, m *store.Mailbox) {
	if in.Port == 0 {
		m.Port = 443
		if m.Security == SecurityNone {
			m.Port = 80
		}
	}
	m.Folder = strings.ToLower(m.Folder)
	m.MoveFolder = strings.ToLower(m.MoveFolder)
	if m.Direction == store.Outbound {
		m.Folder, m.AfterAction, m.MoveFolder = "", "", ""
		return
	}
	if m.Folder == "" {
		m.Folder = "inbox"
	}
	if m.AfterAction == "" {
		m.AfterAction = store.AfterMarkRead
	}
}

// EWSDiscoverKey names the autodiscover result of m in an ews.Endpoints cache: a change of
// the address, the login or the autodiscover host discovers again.
func EWSDiscoverKey(m store.Mailbox) string {
	return strconv.FormatInt(m.ID, 10) + "|" + strings.ToLower(m.Address) + "|" + m.Login + "|" + m.AutodiscoverHost
}

// validAutodiscoverHost reports whether h is a host name or IP address, optionally with
// a port: what an autodiscover host may be.
func validAutodiscoverHost(h string) bool {
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return false
		}
		host = hh
	} else if strings.Contains(h, ":") {
		return false // a port without a host, or an IPv6 address without brackets
	}
	if host == "" || len(host) > maxHostLen {
		return false
	}
	return net.ParseIP(host) != nil || hostRe.MatchString(host)
}

// validateEWS checks the settings only an EWS mailbox has.
func validateEWS(m store.Mailbox, e *ValidationError) {
	if m.Security == SecurityStartTLS {
		e.add("security", "EWS runs over HTTPS: choose tls (or none for a server on this machine)")
	}
	if m.Host == "" && m.Security == SecurityNone {
		e.add("security", "autodiscover (an empty host) runs over HTTPS: choose tls, or type the server's host")
	}
	switch {
	case m.AutodiscoverHost == "":
	case m.Host != "":
		e.add("autodiscover_host", "a typed host is the EWS server itself, without autodiscover: leave the host empty to find the server through the autodiscover host, or clear the autodiscover host")
	case !validAutodiscoverHost(m.AutodiscoverHost):
		e.add("autodiscover_host", "enter the host name autodiscover asks (autodiscover.contoso.com, or mail.hoster.net:8443), without scheme or path")
	}
	if m.Address == "" {
		e.add("address", "enter the primary SMTP address of the Exchange mailbox, like support@contoso.com")
	}
	if m.Login == "" && m.Auth == store.AuthPassword {
		e.add("login", "enter the account that signs in to EWS (user@domain or DOMAIN\\user)")
	}
	if m.Direction != store.Inbound {
		return
	}
	if m.Folder != "inbox" {
		e.add("folder", "an EWS mailbox reads its inbox (folder: inbox)")
	}
	switch m.AfterAction {
	case store.AfterMarkRead, store.AfterKeep, store.AfterDelete:
	case store.AfterMove:
		ok := false
		for _, f := range ewsMoveFolders {
			ok = ok || f == m.MoveFolder
		}
		if !ok {
			e.add("move_folder", "an EWS mailbox moves handled mail to a well-known folder: "+strings.Join(ewsMoveFolders, " or "))
		}
	default:
		e.add("after_action", "choose mark_read, move, delete (to Deleted Items) or keep for an EWS mailbox")
	}
}
