package web

import (
	"io/fs"
	"os"
	"regexp"
	"testing"
)

// seedWord is the project's name for its specification, which users never saw: pages and
// the README speak in the product's own words ("Tenant ID", "From addresses").
var seedWord = regexp.MustCompile(`(?i)\bseeds?\b|\bseed's\b`)

func TestPagesSpeakProductWords(t *testing.T) {
	for _, root := range []fs.FS{templateFS, staticFS} {
		err := fs.WalkDir(root, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(root, path)
			if err != nil {
				return err
			}
			if m := seedWord.Find(b); m != nil {
				t.Errorf("%s says %q: speak in the product's own words", path, m)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{"../../README.md", "../api/openapi.json"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range seedWord.FindAll(b, -1) {
			t.Errorf("%s says %q: speak in the product's own words", path, m)
		}
	}
}
