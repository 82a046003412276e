package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.0 description of this API. Keep it in step with New's routes
// (TestOpenAPIListsRoutes checks that every route is described).
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPI)
}
