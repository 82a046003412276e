package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/postroom/postroom/internal/connector"
)

// wellKnownFolders are the folder names Graph accepts in place of an id (reference 3.1).
var wellKnownFolders = map[string]bool{
	"inbox": true, "sentitems": true, "deleteditems": true, "archive": true, "drafts": true,
	"junkemail": true, "outbox": true, "msgfolderroot": true, "recoverableitemsdeletions": true,
	"clutter": true, "conversationhistory": true, "scheduled": true, "searchfolders": true,
	"syncissues": true, "conflicts": true, "localfailures": true, "serverfailures": true,
}

// mailFolder is the part of Graph's mailFolder resource we use.
type mailFolder struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

// folderList is a page of mailFolders.
type folderList struct {
	Value    []mailFolder `json:"value"`
	NextLink string       `json:"@odata.nextLink"`
}

// errFolderMissing says a folder path does not exist; found is the deepest existing
// folder ("" id: the mailbox's top level) and missing the names below it.
type errFolderMissing struct {
	path    string
	found   mailFolder
	missing []string
}

func (e *errFolderMissing) Error() string { return fmt.Sprintf("no folder %q", e.path) }

// splitFolderPath splits "Inbox/Support" into its names; "" is the inbox.
func splitFolderPath(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return []string{"inbox"}
	}
	var parts []string
	for p := range strings.SplitSeq(path, "/") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return parts
}

// resolveFolder finds a folder by well-known name ("inbox"), display name ("Support": at
// the top level, else below the inbox), path of display names ("Inbox/Support") or id.
// A folder that does not exist gives *errFolderMissing; other errors are raw.
func (c *client) resolveFolder(ctx context.Context, path string) (mailFolder, error) {
	parts := splitFolderPath(path)
	first := parts[0]
	var cur mailFolder
	switch {
	case wellKnownFolders[strings.ToLower(first)]:
		f, err := c.folderByID(ctx, strings.ToLower(first))
		if err != nil {
			return mailFolder{}, err
		}
		cur = f
	default:
		top, err := c.childByName(ctx, "", first)
		if err != nil {
			return mailFolder{}, err
		}
		if top.ID == "" && len(parts) == 1 {
			// Not at the top level: an id, or a folder below the inbox.
			if f, err := c.folderByID(ctx, first); err == nil {
				return f, nil
			} else if !isNotFound(err) {
				return mailFolder{}, err
			}
			inbox, err := c.folderByID(ctx, "inbox")
			if err != nil {
				return mailFolder{}, err
			}
			if top, err = c.childByName(ctx, inbox.ID, first); err != nil {
				return mailFolder{}, err
			}
		}
		if top.ID == "" {
			return mailFolder{}, &errFolderMissing{path: path, missing: parts}
		}
		cur = top
	}
	for i, name := range parts[1:] {
		next, err := c.childByName(ctx, cur.ID, name)
		if err != nil {
			return mailFolder{}, err
		}
		if next.ID == "" {
			return mailFolder{}, &errFolderMissing{path: path, found: cur, missing: parts[1+i:]}
		}
		cur = next
	}
	return cur, nil
}

// isNotFound reports a Graph answer that an id names nothing (404, or 400 for an id that
// cannot be one).
func isNotFound(err error) bool {
	return hasStatus(err, http.StatusNotFound, "ErrorItemNotFound", "ErrorInvalidIdMalformed", "ResourceNotFound") ||
		hasStatus(err, http.StatusBadRequest, "ErrorInvalidIdMalformed", "ErrorInvalidRequest")
}

// folderByID GETs a folder by id or well-known name.
func (c *client) folderByID(ctx context.Context, id string) (mailFolder, error) {
	var f mailFolder
	err := c.getJSON(ctx, "graph get folder", c.userURL("/mailFolders/"+url.PathEscape(id)+"?$select=id,displayName"), &f)
	return f, err
}

// childByName returns the child folder of parentID ("" = the top level) whose display name
// is name (case-insensitive, as Outlook treats folder names); a zero mailFolder when none.
func (c *client) childByName(ctx context.Context, parentID, name string) (mailFolder, error) {
	u := c.userURL("/mailFolders") + "?$select=id,displayName&$top=100"
	if parentID != "" {
		u = c.userURL("/mailFolders/"+url.PathEscape(parentID)+"/childFolders") + "?$select=id,displayName&$top=100"
	}
	for u != "" {
		var page folderList
		if err := c.getJSON(ctx, "graph list folders", u, &page); err != nil {
			return mailFolder{}, err
		}
		for _, f := range page.Value {
			if strings.EqualFold(f.DisplayName, name) {
				return f, nil
			}
		}
		u = page.NextLink
	}
	return mailFolder{}, nil
}

// ensureFolder returns the folder at path, creating what is missing of it (childFolders
// below the deepest existing folder, or a new top-level folder).
func (c *client) ensureFolder(ctx context.Context, path string) (mailFolder, error) {
	op := fmt.Sprintf("graph folder %q", path)
	f, err := c.resolveFolder(ctx, path)
	var fm *errFolderMissing
	if !errors.As(err, &fm) {
		return f, c.classify(op, err)
	}
	cur := fm.found
	for _, name := range fm.missing {
		next, err := c.createFolder(ctx, cur.ID, name)
		if hasStatus(err, http.StatusConflict) {
			// Made meanwhile (another node, a person): use it.
			next, err = c.childByName(ctx, cur.ID, name)
			if err == nil && next.ID == "" {
				err = fmt.Errorf("folder %q exists but is not listed", name)
			}
		}
		if err != nil {
			if ae, ok := asAPIError(err); ok && ae.Status < 500 && ae.Status != http.StatusTooManyRequests && ae.Status != http.StatusUnauthorized {
				return mailFolder{}, &connector.Error{Kind: connector.KindConfig, Op: op, Err: err,
					Advice: fmt.Sprintf("the folder %q is missing and cannot be created: create it in Outlook or choose another folder", path)}
			}
			return mailFolder{}, c.classify(op, err)
		}
		c.log.Info("graph folder created", slog.String("folder", name), slog.String("path", path))
		cur = next
	}
	return cur, nil
}

// createFolder creates a folder named name below parentID ("" = the top level).
func (c *client) createFolder(ctx context.Context, parentID, name string) (mailFolder, error) {
	u := c.userURL("/mailFolders")
	if parentID != "" {
		u = c.userURL("/mailFolders/" + url.PathEscape(parentID) + "/childFolders")
	}
	var f mailFolder
	err := c.sendJSON(ctx, "graph create folder", http.MethodPost, u, map[string]any{"displayName": name, "isHidden": false}, &f)
	return f, err
}

// folderError turns a failure to find the folder to read into advice.
func (c *client) folderError(path string, err error) error {
	op := fmt.Sprintf("graph open folder %q", path)
	var fm *errFolderMissing
	if errors.As(err, &fm) || hasStatus(err, http.StatusNotFound, "ErrorItemNotFound") {
		return &connector.Error{Kind: connector.KindConfig, Op: op, Err: err,
			Advice: fmt.Sprintf("the folder %q does not exist in %s: check the name (a well-known name such as inbox or archive, "+
				"a folder's display name, or a path such as Inbox/Support)", path, c.mailbox)}
	}
	return c.classify(op, err)
}
