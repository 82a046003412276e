package web

import "net/http"

// pageMux is the web handler's route table: every route is registered through it, so that
// the table knows, for each pattern, who may use it. A page needs a signed-in user with at
// least a role (page); an open route is served to anyone and checks what it needs itself
// (open: the sign-in form, static files, signed attachment links). The authorization
// matrix test walks this table and requests every route as every role.
type pageMux struct {
	h      *handler
	mux    *http.ServeMux
	routes []pageRoute
}

// pageRoute is one row of the table: Need is the least role, "" for an open route.
type pageRoute struct {
	Pattern string
	Need    string
}

func newPageMux(h *handler) *pageMux { return &pageMux{h: h, mux: http.NewServeMux()} }

// page serves pattern to signed-in users with at least role need (see signedIn).
func (m *pageMux) page(pattern, need string, h pageHandler) {
	m.mux.HandleFunc(pattern, m.h.signedIn(need, h))
	m.routes = append(m.routes, pageRoute{Pattern: pattern, Need: need})
}

// open serves pattern to anyone; h does its own checks.
func (m *pageMux) open(pattern string, h http.Handler) {
	m.mux.Handle(pattern, h)
	m.routes = append(m.routes, pageRoute{Pattern: pattern})
}
