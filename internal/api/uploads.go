package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/postroom/postroom/internal/outbound"
)

// uploadJSON is an attached file in a request body.
type uploadJSON struct {
	Filename      string `json:"filename"`
	ContentType   string `json:"content_type"`
	ContentBase64 string `json:"content_base64"`
}

// uploads are the decoded files of a request: each is spooled to a temporary file, so
// that it is held in memory once only, in the composed message, and not also decoded
// beside it. Remove deletes the files.
type uploads struct {
	files []outbound.Attachment
	paths []string
}

// Remove deletes the spooled files.
func (u *uploads) Remove() {
	for _, p := range u.paths {
		_ = os.Remove(p)
	}
}

// decodeUploads decodes the files of a request; on failure it has written a field error
// (and removed what it spooled). The caller removes the files when the request is done.
func decodeUploads(w http.ResponseWriter, in []uploadJSON) (*uploads, bool) {
	u := &uploads{}
	for i := range in {
		a := &in[i]
		path, size, err := spool(a.ContentBase64)
		a.ContentBase64 = "" // the request's copy may go
		if path != "" {
			u.paths = append(u.paths, path)
		}
		if err != nil {
			u.Remove()
			var bad badBase64
			if errors.As(err, &bad) {
				writeFieldErrors(w, map[string]string{"attachments": fmt.Sprintf("attachment %d (%q): content_base64 is not valid base64 (RFC 4648, with padding)", i+1, a.Filename)})
			} else {
				writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("attachment %d (%q) could not be kept for sending (%v): try again", i+1, a.Filename, err))
			}
			return nil, false
		}
		u.files = append(u.files, outbound.Attachment{Filename: a.Filename, ContentType: a.ContentType, Size: size,
			Open: func() (io.ReadCloser, error) { return os.Open(path) }})
	}
	return u, true
}

// spool decodes base64 text into a new temporary file and returns its path and size.
func spool(b64 string) (path string, size int64, err error) {
	f, err := os.CreateTemp("", "postroom-upload-*")
	if err != nil {
		return "", 0, err
	}
	path = f.Name()
	size, err = io.Copy(f, decoder{base64.NewDecoder(base64.StdEncoding, strings.NewReader(b64))})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return path, size, err
}

// badBase64 is a decoding error of the request's text, as opposed to one of the disk.
type badBase64 struct{ error }

// decoder marks the errors of the base64 decoding as badBase64.
type decoder struct{ r io.Reader }

func (d decoder) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = badBase64{err}
	}
	return n, err
}
