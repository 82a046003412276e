// Package message turns raw Internet messages into store.Message records and back: it parses
// RFC 5322 messages with MIME bodies (RFC 2045-2049: multipart structure, transfer encodings,
// charsets; RFC 2047 encoded words and RFC 2231 parameters; RFC 3676 format=flowed text),
// sanitizes HTML bodies for display, and composes plain-text replies with the threading
// headers of RFC 5322 §3.6.4.
//
// Invariants:
//
//   - Parse never fails, never panics and never changes the raw bytes it is given. It reads
//     real mail as leniently as mature parsers (Python's email package, MimeKit, mime4j) do:
//     see Parse, and testdata/corpus for the shapes it is tested on. A message whose header
//     block or MIME structure is still broken comes back with Unparsed set and ParseError
//     saying why in plain words, plus every header field that could be recovered, so that
//     it is stored raw and shown flagged (DESIGN.md invariant 5). Problems confined to one
//     part (an unknown charset or transfer encoding, a corrupt base64 attachment) do not
//     make the message unparsed: the part is kept as well as it can be read.
//   - Every string Parse returns is valid UTF-8 without NUL bytes, so both store engines can
//     keep it in a text column.
//   - Message ids are kept without angle brackets, References oldest first.
//   - A large message is not held twice: an attachment of more than maxHeldAttachment
//     decoded bytes comes with Open instead of Data, which decodes it again from the raw
//     message, the same way (same bytes as Size counts), each time it is called. The raw
//     bytes given to Parse must therefore stay unchanged until the message is stored.
//   - HTML is kept as received in HTMLBody and must go through SanitizeHTML before it reaches
//     a page; SanitizeHTML never lets the page load anything from outside (no remote images,
//     styles, frames or scripts).
//   - Composed messages are plain text, UTF-8, quoted-printable, with CRLF line endings.
package message

// Limits. None of them is set by an RFC; each bounds what hostile or broken input can cost.
const (
	// maxReferences is how many message ids a References field keeps. RFC 5322 §3.6.4 sets
	// no limit; like common mail clients (and RFC 5537 §3.4.4 for netnews) we keep the first
	// id, the root of the thread, and the most recent ones.
	maxReferences = 20

	// maxMIMEDepth is how deeply multiparts may nest. Real mail rarely goes beyond 5 levels;
	// the bound keeps crafted input from recursing without end.
	maxMIMEDepth = 20

	// maxMIMEParts is how many MIME entities one message may have in total, containers
	// included: room for 1,000 attachments plus their multiparts and text bodies.
	maxMIMEParts = 1100

	// maxRecoverBytes is how much of a message with a broken header block is scanned for
	// header lines that can still be recovered (Subject, From, ...).
	maxRecoverBytes = 64 << 10

	// maxQuotedBytes is how much of the original text a reply quotes.
	maxQuotedBytes = 64 << 10

	// maxHeldAttachment is the largest decoded attachment Parse holds in memory (Data);
	// a larger one is streamed from the raw message when it is stored (Attachment.Open).
	maxHeldAttachment = 256 << 10

	// maxTextBody is the longest text or HTML body part (decoded) shown as the message's
	// body; a longer one is cut there and attached whole (the way webmail clips long
	// messages behind "view entire message"), so a 20 MB body is never held in memory.
	maxTextBody = 512 << 10
)
