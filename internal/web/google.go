package web

import (
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// googleStep is one step of the Google Workspace walk-through.
type googleStep struct {
	ID    string
	Title string
	Why   string
	Where string
	Value string // what to enter there, if anything
}

// googleSteps is the Google Workspace walk-through of the mailbox form.
type googleSteps struct {
	Steps []googleStep
}

// googleWalkthrough is what a Google Workspace administrator sets up before the first
// connection test, filled in with the form's client id and address where known.
func googleWalkthrough(m store.Mailbox) googleSteps {
	clientID := m.OAuth.ClientID
	if clientID == "" {
		clientID = "<client id: the key file's client_id>"
	}
	user := m.Address
	if user == "" {
		user = "<mailbox address>"
	}
	steps := []googleStep{
		{ID: "google-service-account", Title: "Create a service account and its JSON key",
			Why:   "postroom signs in as the service account and acts for the mailbox's user (domain-wide delegation); no person's password or sign-in is needed. Choose the sign-in method “app” above and paste the whole key file into Client secret: it is stored encrypted and never shown again.",
			Where: "Google Cloud console > IAM & Admin > Service accounts > Create service account; then the account > Keys > Add key > Create new key > JSON. For the Gmail API client type also: APIs & Services > Library > Gmail API > Enable."},
		{ID: "google-delegation", Title: "Enable domain-wide delegation for the service account's client id",
			Why:   "Without it Google answers unauthorized_client and gives no token. The client id is the key file's client_id (the service account's “Unique ID”); the scope is the one IMAP, SMTP and the Gmail API need.",
			Where: "Google Admin console (admin.google.com) > Security > Access and data control > API controls > Manage Domain Wide Delegation > Add new",
			Value: "Client ID: " + clientID + "  ·  OAuth scopes: " + credential.GoogleScopeMail},
		{ID: "google-imap", Title: "Turn on IMAP for the organisation",
			Why:   "IMAP and POP mailboxes need it for " + user + "'s organisational unit; Gmail refuses the login otherwise (the Gmail API does not need it). A change can take up to an hour.",
			Where: "Google Admin console > Apps > Google Workspace > Gmail > End User Access > POP and IMAP access: Enable IMAP access for all users"},
		{ID: "google-user", Title: "Check that " + user + " is an active user with Gmail",
			Why:   "The mailbox address is the user the service account acts for: a primary address, not an alias or a group, not suspended, with a Gmail licence. Host and port may stay empty: imap.gmail.com:993 (TLS) and smtp.gmail.com:587 (STARTTLS) are filled in.",
			Where: "Google Admin console > Directory > Users"},
		{ID: "google-signin", Title: "Or: Sign in with Google (a person's sign-in)",
			Why:   "Instead of a service account: choose “A person signs in”, create an OAuth client of type Web application with postroom's redirect URI, and enter its client id and secret; the refresh token Google gives is stored encrypted and renewed.",
			Where: "Google Cloud console > APIs & Services > Credentials > Create credentials > OAuth client ID"},
	}
	if m.Protocol == mailbox.Gmail {
		steps[2].Why = "Not needed for the Gmail API client type."
	}
	return googleSteps{Steps: steps}
}
