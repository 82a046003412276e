package mstest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

var b64 = base64.RawURLEncoding

// signJWT signs claims with key (RS256) and the given header fields.
func signJWT(key *rsa.PrivateKey, header map[string]string, claims any) (string, error) {
	h := map[string]string{"typ": "JWT", "alg": "RS256"}
	for k, v := range header {
		h[k] = v
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("jwt header: %w", err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("jwt claims: %w", err)
	}
	signing := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("jwt signature: %w", err)
	}
	return signing + "." + b64.EncodeToString(sig), nil
}

// jwtParts is a JWT split and decoded, its signature not yet checked.
type jwtParts struct {
	header  map[string]any
	claims  []byte // JSON
	signing string // header.claims as sent
	sig     []byte
}

var errMalformedJWT = errors.New("JWT is not well formed")

func splitJWT(tok string) (jwtParts, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return jwtParts{}, errMalformedJWT
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return jwtParts{}, errMalformedJWT
	}
	cb, err := b64.DecodeString(parts[1])
	if err != nil {
		return jwtParts{}, errMalformedJWT
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return jwtParts{}, errMalformedJWT
	}
	var p jwtParts
	if err := json.Unmarshal(hb, &p.header); err != nil {
		return jwtParts{}, errMalformedJWT
	}
	if !json.Valid(cb) {
		return jwtParts{}, errMalformedJWT
	}
	p.claims, p.signing, p.sig = cb, parts[0]+"."+parts[1], sig
	return p, nil
}

// verify checks an RS256 signature with pub.
func (p jwtParts) verify(pub *rsa.PublicKey) error {
	if alg, _ := p.header["alg"].(string); alg != "RS256" {
		return fmt.Errorf("JWT algorithm %q is not RS256", alg)
	}
	digest := sha256.Sum256([]byte(p.signing))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], p.sig); err != nil {
		return errors.New("signature validation failed")
	}
	return nil
}

// ParseToken checks an access token's signature and returns its claims (expiry and
// revocation are not checked: Graph and introspection do that).
func (s *Server) ParseToken(token string) (Claims, error) {
	p, err := splitJWT(token)
	if err != nil {
		return Claims{}, err
	}
	if err := p.verify(&s.key.PublicKey); err != nil {
		return Claims{}, err
	}
	var c Claims
	if err := json.Unmarshal(p.claims, &c); err != nil {
		return Claims{}, errMalformedJWT
	}
	return c, nil
}

// NewCertificate makes a self-signed 2048-bit RSA certificate valid from an hour ago until
// notAfter, for client assertions (App.AddCertificate takes the certificate; the client
// signs with the key).
func NewCertificate(commonName string, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, fmt.Errorf("certificate serial: %w", err)
	}
	notBefore := time.Now().Add(-time.Hour)
	if notAfter.Before(notBefore) {
		notBefore = notAfter.Add(-time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate: %w", err)
	}
	return cert, key, nil
}
