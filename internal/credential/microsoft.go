package credential

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Cloud is one of Microsoft's clouds: its login host (the "authority"), its Graph host and
// its Exchange Online hosts (ms365-protocol.md §1.2 and §2.1).
type Cloud struct {
	Name     string // "global", "usgov", "usgov-dod", "china", or "custom"
	Label    string // for the mailbox form
	LoginURL string // e.g. https://login.microsoftonline.com
	GraphURL string // e.g. https://graph.microsoft.com
	// ExchangeResource is the resource of app-only IMAP/POP/SMTP tokens
	// (<resource>/.default); DelegatedResource names delegated Exchange scopes
	// (<resource>/IMAP.AccessAsUser.All).
	ExchangeResource  string
	DelegatedResource string
	IMAPHost          string // IMAP and POP3 host
	SMTPHost          string
}

// Cloud names.
const (
	CloudGlobal = "global"
	CloudUSGov  = "usgov"
	CloudUSDoD  = "usgov-dod"
	CloudChina  = "china"
	CloudCustom = "custom"
)

// Clouds returns Microsoft's clouds, the global one first. Hosts marked "unverified" in the
// reference are taken as the best knowledge; any of them can be replaced with a custom
// authority and Graph host.
func Clouds() []Cloud {
	return []Cloud{
		{Name: CloudGlobal, Label: "Global (login.microsoftonline.com)", LoginURL: "https://login.microsoftonline.com",
			GraphURL: "https://graph.microsoft.com", ExchangeResource: "https://outlook.office365.com",
			DelegatedResource: "https://outlook.office.com", IMAPHost: "outlook.office365.com", SMTPHost: "smtp.office365.com"},
		{Name: CloudUSGov, Label: "US Government GCC High (login.microsoftonline.us)", LoginURL: "https://login.microsoftonline.us",
			GraphURL: "https://graph.microsoft.us", ExchangeResource: "https://outlook.office365.us",
			DelegatedResource: "https://outlook.office365.us", IMAPHost: "outlook.office365.us", SMTPHost: "smtp.office365.us"},
		{Name: CloudUSDoD, Label: "US Government DoD (login.microsoftonline.us)", LoginURL: "https://login.microsoftonline.us",
			GraphURL: "https://dod-graph.microsoft.us", ExchangeResource: "https://outlook-dod.office365.us",
			DelegatedResource: "https://outlook-dod.office365.us", IMAPHost: "outlook-dod.office365.us", SMTPHost: "outlook-dod.office365.us"},
		{Name: CloudChina, Label: "China, operated by 21Vianet (login.chinacloudapi.cn)", LoginURL: "https://login.chinacloudapi.cn",
			GraphURL: "https://microsoftgraph.chinacloudapi.cn", ExchangeResource: "https://partner.outlook.cn",
			DelegatedResource: "https://partner.outlook.cn", IMAPHost: "partner.outlook.cn", SMTPHost: "smtp.partner.outlook.cn"},
	}
}

// CloudByName returns the cloud named name; "" is the global cloud. A custom cloud is the
// global one at other URLs: its scopes are the global cloud's (a stand-in of Microsoft's
// cloud, or a proxy in front of it, takes the same resource names).
func CloudByName(name string) (Cloud, bool) {
	if name == "" || name == CloudCustom {
		c := Clouds()[0]
		if name == CloudCustom {
			c.Name, c.Label = CloudCustom, "Another authority URL"
		}
		return c, true
	}
	for _, c := range Clouds() {
		if c.Name == name {
			return c, true
		}
	}
	return Cloud{}, false
}

// Microsoft Graph resource of app-only tokens and delegated Graph permissions.
const (
	graphDefaultSuffix = "/.default"
	offlineAccess      = "offline_access"
)

// tenantRe accepts what Microsoft takes as {tenant}: a GUID, a verified domain, or
// "organizations"/"common" (delegated sign-in only).
var tenantRe = regexp.MustCompile(`^(?i)([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+|organizations|common)$`)

// GUIDRe matches a directory (tenant) id or an application (client) id.
var guidRe = regexp.MustCompile(`^(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ValidTenant reports whether s can be a tenant in an authority URL.
func ValidTenant(s string) bool { return tenantRe.MatchString(s) }

// ValidGUID reports whether s is a GUID, the form of directory and application ids.
func ValidGUID(s string) bool { return guidRe.MatchString(s) }

// ValidAuthorityURL checks a custom login host or Graph host: an absolute http(s) URL with
// a host and no query. Plain http is allowed only on loopback (a local stand-in).
func ValidAuthorityURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("enter a URL like https://login.microsoftonline.com")
	}
	if u.Scheme == "http" {
		h := u.Hostname()
		if h != "127.0.0.1" && h != "::1" && h != "localhost" {
			return fmt.Errorf("use https (plain http only for a server on this machine)")
		}
	}
	return nil
}

// MicrosoftTokenURL is the v2.0 token endpoint of tenant at a login host.
func MicrosoftTokenURL(loginURL, tenant string) string {
	return strings.TrimRight(loginURL, "/") + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// MicrosoftAuthorizeURL is the v2.0 authorize endpoint of tenant at a login host.
func MicrosoftAuthorizeURL(loginURL, tenant string) string {
	return strings.TrimRight(loginURL, "/") + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/authorize"
}

// GraphURLFor is the Graph host of a mailbox: its own GraphURL when set, else its cloud's.
func GraphURLFor(graphURL, cloudName string) string {
	if graphURL != "" {
		return strings.TrimRight(graphURL, "/")
	}
	c, ok := CloudByName(cloudName)
	if !ok {
		c = Clouds()[0]
	}
	return c.GraphURL
}
