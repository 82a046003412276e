package ewstest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"
)

// Autodiscover as Exchange Server serves it: the SOAP service (GetUserSettings of
// http://schemas.microsoft.com/exchange/2010/Autodiscover) and Outlook's POX service
// (request schema .../outlook/requestschema/2006, response schema
// .../outlook/responseschema/2006a), with the same sign-in as EWS.
const (
	AutodiscoverSOAPPath = "/autodiscover/autodiscover.svc"
	AutodiscoverPOXPath  = "/autodiscover/autodiscover.xml"

	NSAutodiscover      = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
	NSAddressing        = "http://www.w3.org/2005/08/addressing"
	NSPOXRequest        = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	NSPOXResponse       = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	NSPOXResponseRoot   = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	actionUserSettings  = "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"
	actionSettingsReply = actionUserSettings + "Response"
)

// autodiscoverState holds the autodiscover settings and faults (guarded by Server.mu).
type autodiscoverState struct {
	ewsURL       string            // answered as ExternalEwsUrl / EwsUrl; the stand-in's own when ""
	redirectAddr map[string]string // lower address -> the address to ask for instead
	redirectURL  string            // answered as RedirectUrl to requests for another host
	refuseSOAP   bool
	refusePOX    bool
	httpRedirect string   // Location of the plain listener's 302
	hosts        []string // the Host of each autodiscover request, in order
}

// CertPool trusts the stand-in's certificate (Options.TLS); nil without TLS.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// PlainAddr is the address of the plain http listener (Options.TLS), "" without TLS.
func (s *Server) PlainAddr() string { return s.plainAddr }

// SetEWSURL makes autodiscover answer u as the EWS URL (ExternalEwsUrl, POX EXPR EwsUrl)
// instead of the stand-in's own URL.
func (s *Server) SetEWSURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ad.ewsURL = u
}

// RedirectAddress makes autodiscover answer a request for from with a redirect to the
// address to (SOAP ErrorCode RedirectAddress, POX Action redirectAddr).
func (s *Server) RedirectAddress(from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ad.redirectAddr == nil {
		s.ad.redirectAddr = map[string]string{}
	}
	s.ad.redirectAddr[strings.ToLower(from)] = to
}

// RedirectURL makes autodiscover requests whose Host is not u's host answer with a
// redirect to u (SOAP ErrorCode RedirectUrl, POX Action redirectUrl); "" stops it.
func (s *Server) RedirectURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ad.redirectURL = u
}

// RefuseAutodiscover makes the SOAP or POX service answer 404, as a server without it.
func (s *Server) RefuseAutodiscover(soap, pox bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ad.refuseSOAP, s.ad.refusePOX = soap, pox
}

// RedirectHTTP makes the plain listener answer GET /autodiscover/autodiscover.xml with a
// 302 to location ("" : 404).
func (s *Server) RedirectHTTP(location string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ad.httpRedirect = location
}

// AutodiscoverHosts returns the Host header of every autodiscover request so far.
func (s *Server) AutodiscoverHosts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ad.hosts...)
}

// servePlain is the plain http listener: the unauthenticated autodiscover redirect.
func (s *Server) servePlain(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	loc := s.ad.httpRedirect
	s.ad.hosts = append(s.ad.hosts, "http://"+r.Host)
	s.mu.Unlock()
	if r.Method != http.MethodGet || !strings.EqualFold(r.URL.Path, AutodiscoverPOXPath) || loc == "" {
		http.NotFound(w, r)
		return
	}
	http.Redirect(w, r, loc, http.StatusFound)
}

// serveAutodiscover answers SOAP GetUserSettings and POX autodiscover requests.
func (s *Server) serveAutodiscover(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	soap := strings.EqualFold(r.URL.Path, AutodiscoverSOAPPath)
	s.mu.Lock()
	s.ad.hosts = append(s.ad.hosts, r.Host)
	refused := (soap && s.ad.refuseSOAP) || (!soap && s.ad.refusePOX)
	ntlm := s.ntlm
	if soap {
		s.ops["GetUserSettings"]++
	} else {
		s.ops["Autodiscover"]++
	}
	s.mu.Unlock()
	if refused {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "autodiscover takes requests by POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if ntlm {
		if _, ok := s.ntlmAuth(w, r); !ok {
			return
		}
	} else if _, ok := s.authenticate(r); !ok {
		w.Header().Add("WWW-Authenticate", `Basic realm="`+r.Host+`"`)
		w.Header().Add("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	root, err := parseTree(bytes.NewReader(body))
	if err != nil {
		root = &node{}
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if soap {
		s.userSettings(w, r, root)
		return
	}
	s.pox(w, r, root)
}

// answer decides what autodiscover says for address asked at host: the EWS URL, a
// redirect, or that the user is unknown.
func (s *Server) answer(host, address string) (ewsURL, redirectAddr, redirectURL string, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if to := s.ad.redirectAddr[strings.ToLower(address)]; to != "" {
		return "", to, "", true
	}
	if u := s.ad.redirectURL; u != "" && !strings.Contains(u, "://"+host+"/") {
		return "", "", u, true
	}
	if !s.boxes[strings.ToLower(address)] {
		return "", "", "", false
	}
	ewsURL = s.ad.ewsURL
	if ewsURL == "" {
		ewsURL = s.url
	}
	return ewsURL, "", "", true
}

// userSettings answers GetUserSettings (SOAP 1.1 with WS-Addressing, as Exchange does).
func (s *Server) userSettings(w http.ResponseWriter, r *http.Request, env *node) {
	req := env.path("Body", "GetUserSettingsRequestMessage", "Request")
	action := env.path("Header", "Action").text()
	if env.Local != "Envelope" || env.Space != NSSoap || req == nil || env.path("Body", "GetUserSettingsRequestMessage").Space != NSAutodiscover || action != actionUserSettings {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="%s"><s:Body><s:Fault><faultcode>s:Client</faultcode>`+
			`<faultstring xml:lang="en-US">The message could not be processed: expected GetUserSettingsRequestMessage of %s with the action %s.</faultstring></s:Fault></s:Body></s:Envelope>`,
			NSSoap, NSAutodiscover, actionUserSettings)
		return
	}
	var users strings.Builder
	for _, u := range req.path("Users").all("User") {
		address := u.kid("Mailbox").text()
		ewsURL, rAddr, rURL, known := s.answer(r.Host, address)
		switch {
		case rAddr != "":
			fmt.Fprintf(&users, `<UserResponse><ErrorCode>RedirectAddress</ErrorCode><ErrorMessage>Redirection address.</ErrorMessage><RedirectTarget>%s</RedirectTarget><UserSettingErrors/><UserSettings/></UserResponse>`, esc(rAddr))
		case rURL != "":
			fmt.Fprintf(&users, `<UserResponse><ErrorCode>RedirectUrl</ErrorCode><ErrorMessage>Redirection URL.</ErrorMessage><RedirectTarget>%s</RedirectTarget><UserSettingErrors/><UserSettings/></UserResponse>`, esc(rURL))
		case !known:
			fmt.Fprintf(&users, `<UserResponse><ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user: '%s'</ErrorMessage><RedirectTarget i:nil="true"/><UserSettingErrors/><UserSettings/></UserResponse>`, esc(address))
		default:
			var settings strings.Builder
			for _, st := range req.path("RequestedSettings").all("Setting") {
				switch name := st.text(); name {
				case "ExternalEwsUrl", "InternalEwsUrl":
					fmt.Fprintf(&settings, `<UserSetting i:type="StringSetting"><Name>%s</Name><Value>%s</Value></UserSetting>`, name, esc(ewsURL))
				}
			}
			fmt.Fprintf(&users, `<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage><RedirectTarget i:nil="true"/><UserSettingErrors/><UserSettings>%s</UserSettings></UserResponse>`, settings.String())
		}
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="%s" xmlns:a="%s"><s:Header>`+
		`<a:Action s:mustUnderstand="1">%s</a:Action>`+
		`<h:ServerVersionInfo xmlns:h="%s" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><h:MajorVersion>15</h:MajorVersion><h:MinorVersion>2</h:MinorVersion><h:MajorBuildNumber>1544</h:MajorBuildNumber><h:MinorBuildNumber>4</h:MinorBuildNumber><h:Version>Exchange2015</h:Version></h:ServerVersionInfo>`+
		`</s:Header><s:Body><GetUserSettingsResponseMessage xmlns="%s"><Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance">`+
		`<ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses>%s</UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>`,
		NSSoap, NSAddressing, actionSettingsReply, NSAutodiscover, NSAutodiscover, users.String())
}

// pox answers Outlook's autodiscover request.
func (s *Server) pox(w http.ResponseWriter, r *http.Request, root *node) {
	req := root.kid("Request")
	poxError := func(code, msg string) {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="%s"><Response><Error Time="%s" Id="2477272013">`+
			`<ErrorCode>%s</ErrorCode><Message>%s</Message><DebugData/></Error></Response></Autodiscover>`,
			NSPOXResponseRoot, time.Now().UTC().Format("15:04:05.0000000"), code, esc(msg))
	}
	if root.Local != "Autodiscover" || root.Space != NSPOXRequest || req == nil {
		poxError("600", "Invalid Request")
		return
	}
	if req.kid("AcceptableResponseSchema").text() != NSPOXResponse {
		poxError("601", "The requested schema version is not supported.")
		return
	}
	address := req.kid("EMailAddress").text()
	ewsURL, rAddr, rURL, known := s.answer(r.Host, address)
	var account string
	switch {
	case rAddr != "":
		account = fmt.Sprintf(`<Account><AccountType>email</AccountType><Action>redirectAddr</Action><RedirectAddr>%s</RedirectAddr></Account>`, esc(rAddr))
	case rURL != "":
		account = fmt.Sprintf(`<Account><AccountType>email</AccountType><Action>redirectUrl</Action><RedirectUrl>%s</RedirectUrl></Account>`, esc(rURL))
	case !known:
		poxError("500", "The email address can't be found.")
		return
	default:
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		account = fmt.Sprintf(`<Account><AccountType>email</AccountType><Action>settings</Action>`+
			`<Protocol><Type>EXCH</Type><Server>%s</Server><ASUrl>%s</ASUrl><EwsUrl>%s</EwsUrl></Protocol>`+
			`<Protocol><Type>EXPR</Type><Server>%s</Server><SSL>On</SSL><AuthPackage>Ntlm</AuthPackage><EwsUrl>%s</EwsUrl></Protocol></Account>`,
			esc(host), esc(ewsURL), esc(ewsURL), esc(host), esc(ewsURL))
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="%s"><Response xmlns="%s">`+
		`<User><DisplayName>%s</DisplayName><AutoDiscoverSMTPAddress>%s</AutoDiscoverSMTPAddress></User>%s</Response></Autodiscover>`,
		NSPOXResponseRoot, NSPOXResponse, esc(address), esc(address), account)
}

// selfSigned makes a certificate for hosts and the loopback addresses that is its own
// trust anchor, and a pool that trusts it.
func selfSigned(hosts []string) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("ewstest: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "ewstest"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		DNSNames:    append([]string{"localhost"}, hosts...),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("ewstest: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("ewstest: certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// TLSAddr is the address of the TLS listener (Options.TLS), where URL points.
func (s *Server) TLSAddr() string {
	return strings.TrimSuffix(strings.TrimPrefix(s.url, "https://"), Path)
}

// Client is an HTTP client for tests that trusts the stand-in's certificate and reaches
// every host name on loopback: route names the address to dial for a host and port
// (TLSAddr, PlainAddr, or another loopback listener), "" refuses the connection as a host
// that is down would. Nothing leaves the machine.
func (s *Server) Client(route func(host, port string) string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(addr)
			to := route(host, port)
			if to == "" {
				return nil, fmt.Errorf("ewstest: %s is down (connection refused)", addr)
			}
			return d.DialContext(ctx, network, to)
		},
	}}
}
