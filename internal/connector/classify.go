package connector

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// ClassifyDial turns a failure to reach or greet a server into an *Error with advice.
// addr is "host:port" as configured; op names the protocol step ("imap connect").
func ClassifyDial(op, addr string, err error) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	var (
		dnsErr      *net.DNSError
		hostnameErr x509.HostnameError
		unknownAuth x509.UnknownAuthorityError
		invalidCert x509.CertificateInvalidError
		recordErr   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &dnsErr):
		return &Error{Kind: KindConfig, Op: op, Err: err,
			Advice: fmt.Sprintf("the host name in %q does not resolve: check the spelling of the host", addr)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Error{Kind: KindNetwork, Op: op, Err: err,
			Advice: fmt.Sprintf("nothing accepts connections on %s: check the host and port, and that the mail server is running", addr)}
	case errors.As(err, &recordErr):
		return &Error{Kind: KindTLS, Op: op, Err: err,
			Advice: fmt.Sprintf("%s does not speak TLS on this port: use security starttls or none here, or the server's TLS port (993 for IMAP, 465 for SMTP)", addr)}
	case errors.As(err, &hostnameErr):
		return &Error{Kind: KindTLS, Op: op, Err: err,
			Advice: "the server's TLS certificate is for another name: use the host name the certificate names"}
	case errors.As(err, &invalidCert):
		if invalidCert.Reason == x509.Expired {
			return &Error{Kind: KindTLS, Op: op, Err: err,
				Advice: "the server's TLS certificate has expired: ask the mail server's administrator to renew it"}
		}
		return &Error{Kind: KindTLS, Op: op, Err: err,
			Advice: "the server's TLS certificate is not valid: ask the mail server's administrator to fix it"}
	case errors.As(err, &unknownAuth):
		return &Error{Kind: KindTLS, Op: op, Err: err,
			Advice: "the server's TLS certificate is not signed by a trusted authority: install a trusted certificate on the server"}
	case errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return &Error{Kind: KindNetwork, Op: op, Err: err,
			Advice: fmt.Sprintf("%s did not answer in time: check the host, port and firewall; a TLS port used without TLS (or the reverse) also hangs", addr)}
	}
	return &Error{Kind: KindNetwork, Op: op, Err: err,
		Advice: fmt.Sprintf("the connection to %s failed: check the host, port and security setting", addr)}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
