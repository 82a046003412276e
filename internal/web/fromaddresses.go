package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// The From addresses of an outbound mailbox (the seed's "Business Attributes"): the
// addresses agents may reply from, each with a display name. Listed for supervisors, added
// and deleted by administrators.

type fromAddressesData struct {
	Mailbox     store.Mailbox
	Addresses   []store.FromAddress
	Address     string
	DisplayName string
	Errors      map[string]string
	Notice      string
}

func (h *handler) fromAddresses(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadOutbound(w, r)
	if !ok {
		return
	}
	d := fromAddressesData{}
	switch r.URL.Query().Get("notice") {
	case "added":
		d.Notice = "From address added. Agents see it in the From list of their next reply."
	case "deleted":
		d.Notice = "From address deleted."
	}
	h.renderFromAddresses(w, r, v, http.StatusOK, m, d)
}

func (h *handler) fromAddressAdd(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadOutbound(w, r)
	if !ok || !h.needService(w, r) {
		return
	}
	d := fromAddressesData{
		Address:     strings.TrimSpace(r.PostForm.Get("address")),
		DisplayName: strings.TrimSpace(r.PostForm.Get("display_name")),
	}
	_, err := h.mailboxes.AddFromAddress(r.Context(), v.User.Username, m.ID, d.Address, d.DisplayName)
	var ve *mailbox.ValidationError
	switch {
	case err == nil:
		http.Redirect(w, r, fromAddressesURL(m.ID)+"?notice=added", http.StatusSeeOther)
	case errors.As(err, &ve):
		d.Errors = ve.Fields
		h.renderFromAddresses(w, r, v, http.StatusBadRequest, m, d)
	case errors.Is(err, store.ErrConflict):
		d.Errors = map[string]string{"address": "this address is already on this mailbox"}
		h.renderFromAddresses(w, r, v, http.StatusConflict, m, d)
	default:
		h.serverError(w, r, "add the From address", err)
	}
}

func (h *handler) fromAddressDelete(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadOutbound(w, r)
	if !ok || !h.needService(w, r) {
		return
	}
	fid, err := strconv.ParseInt(r.PathValue("fid"), 10, 64)
	if err != nil {
		h.errorPage(w, r, http.StatusNotFound, "Not found", "There is no such From address. Go back to the mailbox's From addresses.")
		return
	}
	// Only an address of this mailbox: the URL names both.
	list, err := h.st.ListFromAddresses(r.Context(), m.ID)
	if err != nil {
		h.serverError(w, r, "list the From addresses", err)
		return
	}
	found := false
	for _, a := range list {
		found = found || a.ID == fid
	}
	if !found {
		h.errorPage(w, r, http.StatusNotFound, "Not found", "This From address is not on this mailbox; it may have been deleted already.")
		return
	}
	if err := h.mailboxes.DeleteFromAddress(r.Context(), v.User.Username, fid); err != nil && !store.IsNotFound(err) {
		h.serverError(w, r, "delete the From address", err)
		return
	}
	http.Redirect(w, r, fromAddressesURL(m.ID)+"?notice=deleted", http.StatusSeeOther)
}

func fromAddressesURL(id int64) string { return "/mailboxes/" + itoa(id) + "/from-addresses" }

// loadOutbound reads mailbox {id}, which must be an outbound one.
func (h *handler) loadOutbound(w http.ResponseWriter, r *http.Request) (store.Mailbox, bool) {
	m, ok := h.loadMailbox(w, r)
	if !ok {
		return m, false
	}
	if m.Direction != store.Outbound {
		h.errorPage(w, r, http.StatusNotFound, "No From addresses here",
			"From addresses belong to outbound mailboxes; "+m.Name+" is an inbound mailbox. Open an outbound mailbox on the Mailboxes page.")
		return m, false
	}
	return m, true
}

func (h *handler) renderFromAddresses(w http.ResponseWriter, r *http.Request, v viewer, status int, m store.Mailbox, d fromAddressesData) {
	list, err := h.st.ListFromAddresses(r.Context(), m.ID)
	if err != nil {
		h.serverError(w, r, "list the From addresses", err)
		return
	}
	d.Mailbox, d.Addresses = m, list
	h.render(w, r, status, "fromaddresses", h.data(v, "From addresses of "+m.Name, "mailboxes", d))
}
