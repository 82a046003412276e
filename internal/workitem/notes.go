package workitem

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/store"
)

// NoteStore is what notes need of the store.
type NoteStore interface {
	AddNote(ctx context.Context, n store.Note) (store.Note, error)
	UserByUsername(ctx context.Context, username string) (store.User, error)
}

// MaxNoteChars bounds a note: an internal remark, not a document.
const MaxNoteChars = 10000

// NoteFieldError is what a person reads when a note cannot be saved as written.
var NoteFieldError = fmt.Sprintf("write the note (at most %d characters)", MaxNoteChars)

// ErrBadNote is returned for an empty or over-long note.
var ErrBadNote = errors.New("bad note")

// mentionRe finds @username at the start or after a character that cannot be part of an
// email address's local part, so that "ana@example.com" mentions nobody.
var mentionRe = regexp.MustCompile(`(?:^|[^A-Za-z0-9._%+-])@([A-Za-z0-9][A-Za-z0-9._-]{0,63})`)

// Mentioned lists the usernames a note mentions (@username), each once, in order.
func Mentioned(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range mentionRe.FindAllStringSubmatch(text, -1) {
		name := strings.TrimRight(m[1], ".-_") // "@ana." at the end of a sentence
		key := strings.ToLower(name)
		if name != "" && !seen[key] {
			seen[key] = true
			out = append(out, name)
		}
	}
	return out
}

// AddNote records an internal note by user on work item id. Every staff member may write
// one on any item they can open (notes are never sent). Colleagues mentioned with
// @username who exist and are enabled are recorded, so that the note shows in their My
// work; unknown names stay plain text.
func AddNote(ctx context.Context, st NoteStore, user store.User, id int64, text string) (store.Note, error) {
	text = strings.TrimSpace(strings.ReplaceAll(text, "\r\n", "\n"))
	if text == "" || utf8.RuneCountInString(text) > MaxNoteChars {
		return store.Note{}, ErrBadNote
	}
	n := store.Note{WorkItemID: id, AuthorID: user.ID, Text: text}
	for _, name := range Mentioned(text) {
		u, err := st.UserByUsername(ctx, name)
		if store.IsNotFound(err) {
			continue
		}
		if err != nil {
			return store.Note{}, fmt.Errorf("look up @%s: %w", name, err)
		}
		if !u.Disabled && u.ID != user.ID {
			n.Mentions = append(n.Mentions, u.ID)
		}
	}
	saved, err := st.AddNote(ctx, n)
	if err != nil {
		return store.Note{}, err
	}
	saved.AuthorName = user.DisplayName
	if saved.AuthorName == "" {
		saved.AuthorName = user.Username
	}
	return saved, nil
}
