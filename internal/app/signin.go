package app

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/postroom/postroom/internal/vault"
)

// EnvTrustedProxies names the reverse proxies whose X-Forwarded-For header postroom
// believes for the client address of sign-ins (throttling and the audit log): a comma-
// separated list of addresses or CIDR prefixes, e.g. "10.0.0.0/8, 192.0.2.10". Empty (the
// default): the address is always the connection's, and the header is ignored, since any
// client can write it.
const EnvTrustedProxies = "POSTROOM_TRUSTED_PROXIES"

// ParseTrustedProxies reads EnvTrustedProxies' value.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is neither an address nor a prefix: write addresses or prefixes like 10.0.0.0/8, separated by commas", EnvTrustedProxies, part)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// useSignInSettings gives the sign-in service the vault (second factors) and the trusted
// proxies.
func (a *App) useSignInSettings(v *vault.Vault, getenv func(string) string) error {
	proxies, err := ParseTrustedProxies(getenv(EnvTrustedProxies))
	if err != nil {
		return err
	}
	a.Auth.UseVault(v)
	a.Auth.TrustProxies(proxies)
	return nil
}
