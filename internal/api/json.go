package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"

	"github.com/postroom/postroom/internal/store"
)

// maxBodyBytes bounds a JSON request body. The largest legitimate body is a reply text;
// 1 MiB is far more than any agent types and small enough not to hurt the server.
const maxBodyBytes = 1 << 20

// errorBody is the JSON of every error response.
type errorBody struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeFieldErrors(w http.ResponseWriter, fields map[string]string) {
	writeJSON(w, http.StatusBadRequest, errorBody{Error: "the request has invalid fields: correct them and send it again", Fields: fields})
}

// writeStoreError turns a store error into 404 (not found) or 500 (logged).
func (s *server) writeStoreError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, what+" not found: check the id")
		return
	}
	s.logger.ErrorContext(r.Context(), "api request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	writeError(w, http.StatusInternalServerError, fmt.Sprintf("could not read %s: internal error, the server log has the details; try again later", what))
}

// isJSON reports whether the request says its body is JSON (RFC 8259 media type).
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// decodeBody reads a JSON body into v, refusing other content types, oversized bodies and
// unknown fields. On failure it has written the error response and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if !isJSON(r) {
		writeError(w, http.StatusUnsupportedMediaType, "send the request body as JSON with Content-Type: application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes: send less", maxBodyBytes))
			return false
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("request body is not valid JSON for this endpoint (%v): fix it and send it again", err))
		return false
	}
	return true
}
