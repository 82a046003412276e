package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// openRoutes are the routes served without sign-in, each with the reason. A new open route
// must be added here, or TestPageAuthorizationMatrix fails.
var openRoutes = map[string]string{
	"GET /login":            "the sign-in form",
	"POST /login":           "the sign-in form",
	"GET /static/":          "the stylesheet, scripts and icons",
	"GET /favicon.ico":      "the icon",
	"GET /attachments/{id}": "a signed link (checked by the handler) or a session",
	"GET /routing":          "a redirect to /routing/rules, which needs a sign-in",
	"/":                     "the page-not-found answer",
	"GET /login/sso":        "single sign-on starts here, before anyone is signed in",
	"GET /sso/callback":     "the identity provider sends the browser back here",
}

// TestPageAuthorizationMatrix requests every page of the route table as nobody, an agent, a
// supervisor and an admin. Nobody is sent to the sign-in page; a role below the page's
// rule gets "Not allowed"; a role at or above it gets past the role check. A form POST is
// sent without its CSRF token, so one that passes the role check stops at "Form expired"
// and changes nothing.
func TestPageAuthorizationMatrix(t *testing.T) {
	f := newFixture(t)
	rank := map[string]int{store.RoleAgent: 1, store.RoleSupervisor: 2, store.RoleAdmin: 3}
	callers := []struct {
		name string
		rank int
		c    *browserless
	}{
		{"nobody", 0, f.httpClient(t)},
		{"ana (agent)", 1, f.signIn(t, "ana")},
		{"sam (supervisor)", 2, f.signIn(t, "sam")},
		{"admin", 3, f.signIn(t, "admin")},
	}
	ids := regexp.MustCompile(`\{[a-z_]+\}`)
	if len(f.routes) < 80 {
		t.Fatalf("route table has %d routes: the matrix would prove little", len(f.routes))
	}
	seenOpen := map[string]bool{}
	for _, rt := range f.routes {
		if rt.Need == "" {
			if openRoutes[rt.Pattern] == "" {
				t.Errorf("%s is served without sign-in: give it a role, or add it to openRoutes with the reason", rt.Pattern)
			}
			seenOpen[rt.Pattern] = true
			continue
		}
		if rank[rt.Need] == 0 {
			t.Errorf("%s: unknown role %q", rt.Pattern, rt.Need)
			continue
		}
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = strings.TrimSuffix(ids.ReplaceAllString(path, "1"), "{$}")
		for _, cl := range callers {
			var p webPage
			switch {
			case strings.HasSuffix(path, "/events"):
				p = cl.c.stream(path)
			case method == http.MethodGet:
				p = cl.c.get(path)
			default:
				p = cl.c.post(path, url.Values{"x": {"1"}})
			}
			switch {
			case cl.rank == 0:
				if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
					t.Errorf("%s as %s: %d %s, want a redirect to /login", rt.Pattern, cl.name, p.status, p.header.Get("Location"))
				}
			case cl.rank < rank[rt.Need]:
				if p.status != http.StatusForbidden || !strings.Contains(p.body, "Not allowed") {
					t.Errorf("%s as %s: %d, want 403 Not allowed (needs %s)", rt.Pattern, cl.name, p.status, rt.Need)
				}
			default:
				if strings.Contains(p.body, "Not allowed") || strings.HasPrefix(p.header.Get("Location"), "/login") {
					t.Errorf("%s as %s: %d %s, want past the role check", rt.Pattern, cl.name, p.status, p.header.Get("Location"))
				}
				if method == http.MethodPost && (p.status != http.StatusForbidden || !strings.Contains(p.body, "Form expired")) {
					t.Errorf("%s as %s without its CSRF token: %d, want 403 Form expired", rt.Pattern, cl.name, p.status)
				}
				if p.status >= 500 {
					t.Errorf("%s as %s: %d", rt.Pattern, cl.name, p.status)
				}
			}
		}
	}
	for pattern := range openRoutes {
		if !seenOpen[pattern] {
			t.Errorf("openRoutes lists %s, which is not an open route", pattern)
		}
	}
}

// stream requests a server-sent event stream and returns its status and headers once they
// arrive, without waiting for a stream that does not end.
func (c *browserless) stream(path string) webPage {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	p := webPage{status: resp.StatusCode, header: resp.Header}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return readPage(c.t, resp)
	}
	return p
}
