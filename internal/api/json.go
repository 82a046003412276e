package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/mailbox"
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

// decodeBody reads a JSON body into v, refusing other content types, oversized bodies,
// bodies that are not UTF-8, data after the JSON value and unknown fields: on failure it
// has written a 4xx with the reason and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeBodyLimit(w, r, v, maxBodyBytes)
}

// maxReplyBodyBytes bounds a reply's JSON body, which may carry attachments in base64:
// the largest outbound Max size (20 MB) once encoded, with room for the text.
const maxReplyBodyBytes = 28 << 20

// decodeBodyLimit is decodeBody for a body of at most limit bytes.
func decodeBodyLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	if !isJSON(r) {
		writeError(w, http.StatusUnsupportedMediaType, "send the request body as JSON with Content-Type: application/json")
		return false
	}
	body, ok := readBody(w, r, limit)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("request body is not valid JSON for this endpoint (%v): fix it and send it again", err))
		return false
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("request body has data after the JSON value (at byte %d): send exactly one JSON object", dec.InputOffset()))
		return false
	}
	return true
}

// readBody reads a request body of at most limit bytes that must be UTF-8 (RFC 8259 §8.1:
// JSON exchanged between systems is UTF-8; encoding/json would silently replace the bad
// bytes). On failure it has written the error response and returns false.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes: send less", limit))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("could not read the request body (%v): send it again", err))
		return nil, false
	}
	if !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, "request body is not valid UTF-8: send the JSON, and the text in it, encoded as UTF-8")
		return nil, false
	}
	return body, true
}

// member says where decodeFields stores one member of a JSON object and what the field
// error says when the value has the wrong JSON type.
type member struct {
	dst  any    // pointer to the destination; a pointer to a pointer makes null mean "absent"
	hint string // field error for a value of the wrong type, e.g. "use a whole number ..."
}

// readObject reads a request body that is one JSON object and returns its members. With
// optional, an empty body is accepted and gives a nil map. On failure it has written the
// error response and returns false.
func readObject(w http.ResponseWriter, r *http.Request, optional bool) (map[string]json.RawMessage, bool) {
	body, ok := readBody(w, r, maxBodyBytes)
	if !ok {
		return nil, false
	}
	if len(bytes.TrimSpace(body)) == 0 && optional {
		return nil, true
	}
	if !isJSON(r) {
		writeError(w, http.StatusUnsupportedMediaType, "send the request body as JSON with Content-Type: application/json")
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		msg := "request body must be a JSON object, like {\"name\": \"support\"}"
		if err != nil {
			msg = fmt.Sprintf("request body is not a JSON object (%v): fix it and send it again", err)
		}
		writeError(w, http.StatusBadRequest, msg)
		return nil, false
	}
	return obj, true
}

// decodeFields stores each member of obj in its destination and returns a field error for
// every member of the wrong type and every member it does not know. Members named in
// ignore (read-only fields a client may send back) are accepted and dropped.
func decodeFields(obj map[string]json.RawMessage, members map[string]member, ignore ...string) map[string]string {
	errs := map[string]string{}
	for name, raw := range obj {
		m, ok := members[name]
		if !ok {
			if !slices.Contains(ignore, name) {
				errs[name] = "unknown field: remove it (the fields are listed in /api/v1/openapi.json)"
			}
			continue
		}
		if err := json.Unmarshal(raw, m.dst); err != nil {
			errs[name] = m.hint
		}
	}
	return errs
}

// writeInvalid answers 400 with the field errors, the error text naming each field:
// "<what>: field: message; field: message".
func writeInvalid(w http.ResponseWriter, what string, fields map[string]string) {
	keys := slices.Sorted(maps.Keys(fields))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+fields[k])
	}
	writeJSON(w, http.StatusBadRequest, errorBody{Error: what + ": " + strings.Join(parts, "; "), Fields: fields})
}

// writeChangeError answers for an error of the mailbox service: 400 with field errors for
// invalid input, 409 for a lifecycle rule, 404 for an unknown id, else 500 (logged). object
// names what was acted on ("mailbox 3"), action what was tried ("delete").
func (s *server) writeChangeError(w http.ResponseWriter, r *http.Request, object, action string, err error) {
	var verr *mailbox.ValidationError
	switch {
	case errors.As(err, &verr):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: verr.Error(), Fields: verr.Fields})
	case errors.Is(err, mailbox.ErrOutboundQueue):
		writeInvalid(w, "the request has invalid fields", map[string]string{"queue_id": mailbox.ErrOutboundQueue.Error()})
	case errors.Is(err, mailbox.ErrEnabled), errors.Is(err, mailbox.ErrDefaultOutbound), errors.Is(err, mailbox.ErrQueueDisabled):
		// The rule's words, with the mailbox's name when several were acted on
		// (enable-all); they carry no secrets.
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, object+" already exists: choose another name")
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, object+" not found: check the id")
	default:
		s.logger.ErrorContext(r.Context(), "api request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("could not %s %s: internal error, the server log has the details; try again later", action, object))
	}
}
