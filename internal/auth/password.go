package auth

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The password policy (ValidatePassword), the same wherever a password is chosen: the
// admin's and the user's pages, the API, `postroom user`, POSTROOM_ADMIN_PASSWORD and
// Service.CreateUser. Only the demo's sample users bypass it, explicitly
// (Service.EnsureSampleUser).
//
// A password is refused when it is shorter than MinPasswordLen characters or longer than
// MaxPasswordBytes bytes, is not UTF-8, is the user name, or is one of the common
// passwords: the list in commonpasswords.txt (John the Ripper's password.lst, public
// domain, see the file's header), also after the digits and symbols around it are taken
// away ("Password2024!" is "password"), a word said twice or more ("monkeymonkey"), one
// character repeated, or a run of neighbours ("123456789012", "abcdefghijkl").

//go:embed commonpasswords.txt
var commonPasswordsFile string

// commonPasswords is the parsed list, built once on first use (read-only afterwards).
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 4000)
	for line := range strings.Lines(commonPasswordsFile) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[strings.ToLower(line)] = struct{}{}
	}
	return m
})

// ValidatePassword checks a new password for username. It returns the field message, ""
// when the password is fine.
func ValidatePassword(password, username string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case password == "":
		return fmt.Sprintf("enter a password of at least %d characters", MinPasswordLen)
	case !utf8.ValidString(password):
		return "use valid UTF-8 text"
	case n < MinPasswordLen:
		return fmt.Sprintf("use at least %d characters (this one has %d); a few unrelated words make a good one", MinPasswordLen, n)
	case len(password) > MaxPasswordBytes:
		return fmt.Sprintf("use at most %d bytes (bcrypt reads no more)", MaxPasswordBytes)
	}
	lower := strings.ToLower(password)
	core := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	if name := strings.ToLower(strings.TrimSpace(username)); name != "" && (lower == name || core == name) {
		return "do not use the user name as the password: choose another"
	}
	if isCommonPassword(lower) || isCommonPassword(core) || repeated(lower) || run(lower) {
		return "this password is among the first ones attackers try: choose another"
	}
	return ""
}

// IsCommonPassword reports whether p (any case) is on the list of common passwords.
func isCommonPassword(p string) bool {
	if p == "" {
		return false
	}
	_, ok := commonPasswords()[p]
	return ok
}

// repeated reports whether s is one piece said two or more times ("abcabcabcabc").
func repeated(s string) bool {
	r := []rune(s)
	for size := 1; size <= len(r)/2; size++ {
		if len(r)%size != 0 {
			continue
		}
		if strings.Repeat(string(r[:size]), len(r)/size) == s {
			return true
		}
	}
	return false
}

// run reports whether s is a run of neighbouring characters, up or down ("123456789012"
// counts 0 after 9, "abcdefghijkl", "zyxwvutsrqpo").
func run(s string) bool {
	r := []rune(s)
	if len(r) < 2 {
		return false
	}
	next := func(a, b rune, step rune) bool {
		if b == a+step {
			return true
		}
		return step == 1 && a == '9' && b == '0' || step == -1 && a == '0' && b == '9'
	}
	for _, step := range []rune{1, -1} {
		ok := true
		for i := 1; i < len(r) && ok; i++ {
			ok = next(r[i-1], r[i], step)
		}
		if ok {
			return true
		}
	}
	return false
}
