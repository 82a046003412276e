package credential

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/postroom/postroom/internal/vault"
)

// assertionLifetime is how long a client assertion is valid; one is made per request.
const assertionLifetime = 10 * time.Minute

// Certificate is an app's certificate credential: the certificate uploaded to the app
// registration and its private key.
type Certificate struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// ParseCertificate reads a PEM bundle holding one CERTIFICATE and its RSA private key
// (PKCS #1 "RSA PRIVATE KEY" or PKCS #8 "PRIVATE KEY"), in any order.
func ParseCertificate(bundle []byte) (Certificate, error) {
	var c Certificate
	for {
		var b *pem.Block
		b, bundle = pem.Decode(bundle)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			if c.Cert != nil {
				continue // a chain: the first certificate is the app's
			}
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return Certificate{}, fmt.Errorf("read the certificate: %w", err)
			}
			c.Cert = cert
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return Certificate{}, fmt.Errorf("read the private key: %w", err)
			}
			c.Key = k
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return Certificate{}, fmt.Errorf("read the private key: %w", err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return Certificate{}, errors.New("the private key is not an RSA key: Microsoft Entra ID certificate credentials are RSA")
			}
			c.Key = rk
		}
	}
	switch {
	case c.Cert == nil:
		return Certificate{}, errors.New("no CERTIFICATE block: paste the certificate and its private key as PEM")
	case c.Key == nil:
		return Certificate{}, errors.New("no private key: paste the certificate and its private key (PRIVATE KEY block) as PEM")
	}
	pub, ok := c.Cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.Cmp(c.Key.N) != 0 {
		return Certificate{}, errors.New("the private key does not belong to the certificate")
	}
	return c, nil
}

// Thumbprint is the certificate's SHA-1 thumbprint in hex, as the Entra admin center shows it.
func (c Certificate) Thumbprint() string {
	sum := sha1.Sum(c.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// NewClientAssertion returns a function that signs a fresh client assertion (RFC 7523
// JWT, RS256) for clientID at the token endpoint tokenURL, as Microsoft's certificate
// credentials require: x5t and x5t#S256 headers name the certificate; aud is the token
// endpoint; iss and sub are the client id.
func NewClientAssertion(bundle vault.Secret, clientID, tokenURL string) (func() (string, error), error) {
	c, err := ParseCertificate([]byte(bundle.Reveal()))
	if err != nil {
		return nil, err
	}
	return func() (string, error) { return c.Assertion(clientID, tokenURL, time.Now()) }, nil
}

// Assertion signs one client assertion valid from now.
func (c Certificate) Assertion(clientID, tokenURL string, now time.Time) (string, error) {
	s1 := sha1.Sum(c.Cert.Raw)
	s256 := sha256.Sum256(c.Cert.Raw)
	b64 := base64.RawURLEncoding
	header, err := json.Marshal(map[string]string{
		"alg": "RS256", "typ": "JWT",
		"x5t": b64.EncodeToString(s1[:]), "x5t#S256": b64.EncodeToString(s256[:]),
	})
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"aud": tokenURL, "iss": clientID, "sub": clientID, "jti": hex.EncodeToString(jti),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	})
	if err != nil {
		return "", err
	}
	signing := b64.EncodeToString(header) + "." + b64.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, c.Key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign the client assertion: %w", err)
	}
	return signing + "." + b64.EncodeToString(sig), nil
}
