package api

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// TestAuthorizationMatrix requests every route of the route table as nobody, as an agent, a
// supervisor and an admin, and checks the answer against the route's rule, which the
// OpenAPI document states too (x-postroom-role). A new route needs a rule in both places, or
// this test fails. Unsafe methods are sent with a cookie session and a text/plain body:
// a caller the role check lets through is stopped next by the content-type check (415), so
// nothing is changed, while a caller below the rule gets 403.
func TestAuthorizationMatrix(t *testing.T) {
	f := newFixture(t)
	doc := openAPIRoles(t, f)
	rank := map[string]int{"": 0, store.RoleAgent: 1, store.RoleSupervisor: 2, store.RoleAdmin: 3}
	callers := []struct {
		name string
		rank int
		c    *client
	}{
		{"nobody", 0, f.client(t)},
		{"ana (agent)", 1, f.signedIn(t, "ana")},
		{"sam (supervisor)", 2, f.signedIn(t, "sam")},
		{"admin", 3, f.signedIn(t, "admin")},
	}
	ids := regexp.MustCompile(`\{[a-z_]+\}`)
	routes := (&server{}).routes()
	if len(routes) < 100 {
		t.Fatalf("route table has %d routes: the matrix would prove little", len(routes))
	}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		want := "none"
		if rt.open == nil {
			want = rt.need
			if rank[want] == 0 {
				t.Errorf("%s has no rule: say which role may call it", rt.pattern)
				continue
			}
		}
		if got := doc[rt.pattern]; got != want {
			t.Errorf("%s: openapi.json x-postroom-role = %q, the route table says %q", rt.pattern, got, want)
		}
		if rt.open != nil {
			continue
		}
		url := ids.ReplaceAllString(path, "1")
		for _, cl := range callers {
			var resp response
			if method == http.MethodGet {
				resp = cl.c.get(url)
			} else {
				resp = cl.c.do(method, url, "text/plain", "x")
			}
			switch {
			case cl.rank == 0:
				if resp.status != http.StatusUnauthorized {
					t.Errorf("%s as %s: %d, want 401: %s", rt.pattern, cl.name, resp.status, resp.body)
				}
			case cl.rank < rank[rt.need]:
				if resp.status != http.StatusForbidden || !strings.Contains(string(resp.body), "may not do this") {
					t.Errorf("%s as %s: %d, want 403 (needs %s): %s", rt.pattern, cl.name, resp.status, rt.need, resp.body)
				}
			default:
				if resp.status == http.StatusUnauthorized || (resp.status == http.StatusForbidden && strings.Contains(string(resp.body), "may not do this")) {
					t.Errorf("%s as %s: %d, want the role check passed: %s", rt.pattern, cl.name, resp.status, resp.body)
				}
				if method != http.MethodGet && resp.status != http.StatusUnsupportedMediaType {
					t.Errorf("%s as %s with a text/plain body: %d, want 415 before anything is done: %s", rt.pattern, cl.name, resp.status, resp.body)
				}
				if resp.status >= 500 && resp.status != http.StatusServiceUnavailable {
					t.Errorf("%s as %s: %d: %s", rt.pattern, cl.name, resp.status, resp.body)
				}
			}
		}
	}
}

// openAPIRoles reads x-postroom-role of every operation of the served OpenAPI document, by
// route pattern ("GET /api/v1/me").
func openAPIRoles(t *testing.T, f *fixture) map[string]string {
	t.Helper()
	resp := f.client(t).get("/api/v1/openapi.json")
	var doc struct {
		Paths map[string]map[string]struct {
			Role string `json:"x-postroom-role"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			out[strings.ToUpper(method)+" "+path] = op.Role
		}
	}
	return out
}
