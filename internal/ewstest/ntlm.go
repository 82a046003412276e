package ewstest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //lint:ignore SA1019 NTLM is built on MD4 (MS-NLMP 3.3.2): the stand-in must compute it
)

// NTLM flags of the challenge (MS-NLMP 2.2.2.5): Unicode, request target, NTLM, always
// sign, extended session security, target info, 128-bit.
const ntlmChallengeFlags = 0x00000001 | 0x00000004 | 0x00000200 | 0x00008000 | 0x00080000 | 0x00800000 | 0x20000000

// RequireNTLM makes the stand-in behave like an EWS virtual directory with only Windows
// authentication: it offers NTLM and Negotiate, refuses Basic, and checks NTLMv2 answers
// (MS-NLMP) with the users' passwords. As IIS does, an authenticated connection stays
// authenticated.
func (s *Server) RequireNTLM() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ntlm = true
}

// ntlmAuth runs the NTLM handshake of a request on an NTLM-only stand-in. It returns the
// login when the connection is authenticated; otherwise it has answered (401).
func (s *Server) ntlmAuth(w http.ResponseWriter, r *http.Request) (string, bool) {
	schema, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	offer := func(extra string) {
		if extra != "" {
			w.Header().Set("WWW-Authenticate", extra)
		} else {
			w.Header().Add("WWW-Authenticate", "NTLM")
			w.Header().Add("WWW-Authenticate", "Negotiate")
		}
		w.WriteHeader(http.StatusUnauthorized)
	}
	msg, err := base64.StdEncoding.DecodeString(strings.TrimSpace(token))
	if (schema != "NTLM" && schema != "Negotiate") || err != nil || len(msg) < 12 || !bytes.HasPrefix(msg, []byte("NTLMSSP\x00")) {
		s.mu.Lock()
		login, ok := s.ntlmConns[r.RemoteAddr]
		s.mu.Unlock()
		if ok {
			return login, true
		}
		offer("")
		return "", false
	}
	switch binary.LittleEndian.Uint32(msg[8:]) {
	case 1: // NEGOTIATE: answer a CHALLENGE
		var challenge [8]byte
		_, _ = rand.Read(challenge[:])
		s.mu.Lock()
		s.ntlmChallenges[r.RemoteAddr] = challenge
		s.mu.Unlock()
		target := utf16le("CONTOSO")
		info := []byte{0, 0, 0, 0} // MsvAvEOL
		b := make([]byte, 48)
		copy(b, "NTLMSSP\x00")
		binary.LittleEndian.PutUint32(b[8:], 2)
		binary.LittleEndian.PutUint16(b[12:], uint16(len(target)))
		binary.LittleEndian.PutUint16(b[14:], uint16(len(target)))
		binary.LittleEndian.PutUint32(b[16:], 48)
		binary.LittleEndian.PutUint32(b[20:], ntlmChallengeFlags)
		copy(b[24:], challenge[:])
		binary.LittleEndian.PutUint16(b[40:], uint16(len(info)))
		binary.LittleEndian.PutUint16(b[42:], uint16(len(info)))
		binary.LittleEndian.PutUint32(b[44:], uint32(48+len(target)))
		b = append(append(b, target...), info...)
		offer(schema + " " + base64.StdEncoding.EncodeToString(b))
		return "", false
	case 3: // AUTHENTICATE: check the NTLMv2 response
		s.mu.Lock()
		challenge, ok := s.ntlmChallenges[r.RemoteAddr]
		delete(s.ntlmChallenges, r.RemoteAddr)
		s.mu.Unlock()
		nt, ok1 := ntlmField(msg, 20)
		domain, ok2 := ntlmField(msg, 28)
		user, ok3 := ntlmField(msg, 36)
		if !ok || !ok1 || !ok2 || !ok3 || len(nt) < 32 {
			offer("")
			return "", false
		}
		login := fromUTF16le(user)
		if d := fromUTF16le(domain); d != "" {
			login = d + `\` + login
		}
		s.mu.Lock()
		u := s.users[strings.ToLower(login)]
		s.mu.Unlock()
		if u == nil || !ntlmV2OK(u.Password, fromUTF16le(user), fromUTF16le(domain), challenge[:], nt) {
			offer("")
			return "", false
		}
		s.mu.Lock()
		s.ntlmConns[r.RemoteAddr] = strings.ToLower(login)
		s.mu.Unlock()
		return strings.ToLower(login), true
	}
	offer("")
	return "", false
}

// ntlmV2OK checks an NTLMv2 response: NTProofStr = HMAC_MD5(NTOWFv2, ServerChallenge ||
// blob) (MS-NLMP 3.3.2).
func ntlmV2OK(password, user, domain string, challenge, nt []byte) bool {
	h := md4.New()
	h.Write(utf16le(password))
	m := hmac.New(md5.New, h.Sum(nil))
	m.Write(utf16le(strings.ToUpper(user) + domain))
	key := m.Sum(nil)
	p := hmac.New(md5.New, key)
	p.Write(challenge)
	p.Write(nt[16:])
	return hmac.Equal(p.Sum(nil), nt[:16])
}

// ntlmField reads the payload of the (len, maxlen, offset) field at off.
func ntlmField(msg []byte, off int) ([]byte, bool) {
	if len(msg) < off+8 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint16(msg[off:]))
	at := int(binary.LittleEndian.Uint32(msg[off+4:]))
	if at < 0 || at+n > len(msg) {
		return nil, false
	}
	return msg[at : at+n], true
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}
