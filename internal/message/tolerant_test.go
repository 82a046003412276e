package message

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestDecodeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"What is 2+2=?4", "What is 2+2=?4"},
		{"=?utf-8?Q?a?= =?utf-8?Q?b?=", "ab"},                    // white space between words is dropped
		{"=?utf-8?Q?a?=\r\n =?utf-8?Q?b?=", "ab"},                // also when folded
		{"=?utf-8?Q?a?= and =?utf-8?Q?b?=", "a and b"},           // text between words stays
		{"x =?utf-8?Q?a_b?= y", "x a b y"},                       // "_" is a space
		{"=?UTF-8?q?caf=c3=a9?=", "café"},                        // lower-case encoding and hex
		{"=?utf-8?Q?100=?=", "100="},                             // a stray "=" is itself
		{"=?utf-8?B?Y2Fmw6k?=", "café"},                          // missing padding
		{"=?utf-8?B?Y2Fm\r\nw6k=?=", "=?utf-8?B?Y2Fm\r\nw6k=?="}, // a word does not span lines
		{"=?utf-8?X?abc?=", "=?utf-8?X?abc?="},                   // unknown encoding: text
		{"=?utf-8?Q??=x", "x"},                                   // an empty word
		{"=?iso-8859-1?Q?=E9?= =?utf-8?Q?=C3=A9?=", "éé"},        // adjacent words in two charsets
		{"=?utf-8?Q?caf\xc3\xa9?=", "café"},                      // raw UTF-8 inside a Q word
		{"=?windows-1252?Q?=93quoted=94?=", "“quoted”"},          // a charset go-message knows
		{"=?utf-8*en-us?Q?colour?=", "colour"},                   // RFC 2231 language
		{"=?win-1252?Q?=80?=", "€"},                              // alias go-message does not know
		{"=?x-nobody-knows?Q?na=C3=AFve?=", "naïve"},             // unknown charset, UTF-8 bytes
		{"=?x-nobody-knows?Q?na=EFve?=", "naïve"},                // unknown charset, 8-bit bytes
		{"=?utf-8?Q?na=EFve?=", "naïve"},                         // claims UTF-8, is Latin-1
		{"=?utf-7?Q?+AOk-t+AOk-?=", "été"},                       // UTF-7
		{"=?utf-7?Q?+AOk?= =?utf-7?Q?Abc?=", "éAbc"},             // an open shift ends with its word
		{"Gr\xfc\xdfe \xe2\x82\xac", "Grüße €"},                  // raw Latin-1 and UTF-8 side by side
		{"=?shift_jis?B?g2WDWINn?=", "テスト"},                      // a multi-byte charset
	} {
		if got := decodeText(tc.in); got != tc.want {
			t.Errorf("decodeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecodeUTF7(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// RFC 2152's examples.
		{"A+ImIDkQ.", "A≢Α."},
		{"Hi Mom -+Jjo--!", "Hi Mom -☺-!"},
		{"+ZeVnLIqe-", "日本語"},
		{"Item 3 is +AKM-1.", "Item 3 is £1."},
		{"1 +- 1 = 2", "1 + 1 = 2"},
		{"a + b", "a + b"},         // a lone "+"
		{"+2D3cAQ-", "\U0001F401"}, // a surrogate pair
		{"+2D3-", "\uFFFD"},        // half a surrogate pair
		{"+AO", ""},                // a shift cut short
		{"caf\xe9", "café"},        // 8-bit bytes do not belong in UTF-7
	} {
		if got := decodeUTF7([]byte(tc.in)); got != tc.want {
			t.Errorf("decodeUTF7(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAddressList(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"pete(his account)@silly.test(his host)", "pete@silly.test"},
		{"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", "Pete <pete@silly.test>"},
		{"jdoe@one.test (John Doe)", "John Doe <jdoe@one.test>"},
		{"John(middle)Doe <jd@x.test>", "John Doe <jd@x.test>"},
		{"a(b(c)d)@x.test", "a@x.test"},                                                    // nested comments
		{`"a (not a comment)" <q@x.test>`, `"a (not a comment)" <q@x.test>`},               // parentheses in quotes
		{"(comma, inside) one@x.test, two@x.test", "one@x.test, two@x.test"},               // a comma in a comment
		{`"=?utf-8?Q?M=C3=BCller=2C_J=C3=B6rg?=" <j@x.test>`, `"Müller, Jörg" <j@x.test>`}, // encoded-word in quotes
		{"=?x-bogus?Q?J=F6rg?= <j@x.test>, b@x.test", "Jörg <j@x.test>, b@x.test"},         // unknown charset
		{"=?iso-8859-1?Q?J\xf6rg?= <j@x.test>", "Jörg <j@x.test>"},                         // raw 8-bit in a word
		{"J\xf6rg M\xfcller <j@x.test>", "Jörg Müller <j@x.test>"},                         // raw Latin-1
		{"Friends: a@x.test, b@x.test;", "a@x.test, b@x.test"},                             // a group
		{"Fine <b@x.test>, Broken <a@x.test", "Fine <b@x.test>, Broken <a@x.test>"},        // one bad address
		{"undisclosed-recipients:;", "undisclosed-recipients:;"},                           // shown as written
	} {
		if got := displayList(tc.in); got != tc.want {
			t.Errorf("displayList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHeaderStart(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Subject: x\r\n\r\nbody", "Subject: x\r\n\r\nbody"},
		{"\xef\xbb\xbfSubject: x\r\n", "Subject: x\r\n"},
		{"\r\n \r\n\t\r\nSubject: x\r\n", "Subject: x\r\n"},
		{"\n\nFrom: a@x.test\n", "From: a@x.test\n"},
		{"From a@x.test Mon Mar  9 10:00:00 2026\n\nSubject: x\n", "Subject: x\n"},
		{"\xef\xbb\xbfFrom a@x.test Mon Mar  9 10:00:00 2026\nSubject: x\n", "Subject: x\n"},
		// An empty line before text that is no header field: the message has an empty
		// header and that text is its body.
		{"\r\nHello, no header here\r\n", "\r\nHello, no header here\r\n"},
		{"\r\n\r\n", "\r\n\r\n"},
	} {
		if got := string(headerStart([]byte(tc.in))); got != tc.want {
			t.Errorf("headerStart(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMediaParams(t *testing.T) {
	for _, tc := range []struct {
		in, wantType string
		want         map[string]string
	}{
		{`multipart/mixed; boundary="b1"`, "multipart/mixed", map[string]string{"boundary": "b1"}},
		{`multipart/mixed; boundary*=us-ascii''b2`, "multipart/mixed", map[string]string{"boundary": "b2"}},
		{`multipart/mixed; boundary*=ascii'en'b%3D3`, "multipart/mixed", map[string]string{"boundary": "b=3"}},
		{`multipart/mixed; boundary*0="b"; boundary*1="4"`, "multipart/mixed", map[string]string{"boundary": "b4"}},
		{`multipart/mixed; boundary*1="6"; boundary*0="b5-"`, "multipart/mixed", map[string]string{"boundary": "b5-6"}},
		{`attachment; filename*=iso-8859-1''r%E9sum%E9.pdf`, "attachment", map[string]string{"filename": "résumé.pdf"}},
		{`attachment; filename*=latin1''r%E9sum%E9.pdf`, "attachment", map[string]string{"filename": "résumé.pdf"}},
		{`attachment; filename*0*=utf-8''%C3%A9t%C3%A9; filename*1=".txt"`, "attachment", map[string]string{"filename": "été.txt"}},
		{`attachment; filename*=''plain.txt`, "attachment", map[string]string{"filename": "plain.txt"}},
		{`attachment; filename*=x-unknown''caf%C3%A9.txt`, "attachment", map[string]string{"filename": "café.txt"}},
		{`attachment; filename="=?utf-8?Q?caf=C3=A9?=.txt"`, "attachment", map[string]string{"filename": "café.txt"}},
		{`text/plain; charset=utf-8; charset=latin1; format=flowed`, "text/plain", map[string]string{"charset": "utf-8", "format": "flowed"}},
		{`text/plain; charset*=ascii''latin1; stray`, "text/plain", map[string]string{"charset": "latin1"}},
		{`attachment; filename="a \"quoted\" name.txt"; size=3`, "attachment", map[string]string{"filename": `a "quoted" name.txt`, "size": "3"}},
	} {
		mt, params := mediaParams(tc.in)
		if mt != tc.wantType {
			t.Errorf("mediaParams(%q) type = %q, want %q", tc.in, mt, tc.wantType)
		}
		for k, v := range tc.want {
			if params[k] != v {
				t.Errorf("mediaParams(%q)[%q] = %q, want %q (all: %q)", tc.in, k, params[k], v, params)
			}
		}
	}
}

// TestMultipartReader: the parts of a multipart body as Parse and openPart read them.
func TestMultipartReader(t *testing.T) {
	long := strings.Repeat("x", 10000) // longer than the reader's buffer
	for _, tc := range []struct {
		name, body string
		parts      []string
		end        int
	}{
		{"usual", "preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\nepilogue\r\n",
			[]string{"A: 1\r\n\r\none", "\r\ntwo"}, endClose},
		{"LF line ends and white space after delimiters", "--b \n\none\n--b\t\n\ntwo\n--b-- \n",
			[]string{"\none", "\ntwo"}, endClose},
		{"empty parts", "--b\r\n--b\r\n\r\nx\r\n--b\r\n--b--", []string{"", "\r\nx", ""}, endClose},
		{"lines that only begin with the boundary", "--b\r\n\r\n--b-alt\r\n--b--x\r\n--bb\r\n -b\r\n--b--\r\n",
			[]string{"\r\n--b-alt\r\n--b--x\r\n--bb\r\n -b"}, endClose},
		{"truncated", "--b\r\n\r\none\r\n--b\r\n\r\ntwo, cut", []string{"\r\none", "\r\ntwo, cut"}, endInput},
		{"truncated after a line end", "--b\r\n\r\none\r\n", []string{"\r\none\r\n"}, endInput},
		{"delimiter in the middle of a long line", "--b\r\n\r\n" + long + "--b\r\n--b--", []string{"\r\n" + long + "--b"}, endClose},
		{"close-delimiter without a line end", "--b\r\n\r\nx\r\n--b--", []string{"\r\nx"}, endClose},
		{"never used", "text\r\n--c\r\n", nil, endInput},
		{"no parts", "--b--\r\n", nil, endClose},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mr := newMultipartReader(strings.NewReader(tc.body), "b")
			var got []string
			for {
				r, err := mr.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(b))
			}
			if strings.Join(got, "|") != strings.Join(tc.parts, "|") || len(got) != len(tc.parts) {
				t.Errorf("parts %q, want %q", got, tc.parts)
			}
			if mr.end != tc.end || mr.parts != len(tc.parts) {
				t.Errorf("end %d after %d parts, want %d after %d", mr.end, mr.parts, tc.end, len(tc.parts))
			}
		})
	}
}

// TestTolerantShapesStreamed: a large attachment in a shape that only the tolerant reader
// reads (a byte-order mark, an empty part, an inner boundary that begins with the outer
// one, a message cut short) is opened from the raw message with exactly the bytes Parse
// counted.
func TestTolerantShapesStreamed(t *testing.T) {
	big := randomBytes(maxHeldAttachment+5000, 7)
	raw := "\xef\xbb\xbf\r\nFrom: a@example.org\r\nSubject: big\r\n" +
		"Content-Type: multipart/mixed; boundary*=latin1''%3D_p\r\n\r\n" +
		"--=_p\r\n--=_p\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--=_p\r\nContent-Type: multipart/mixed; boundary=\"=_p-inner\"\r\n\r\n" +
		"--=_p-inner\r\n--=_p-inner\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64Lines(big) +
		"--=_p-inner\r\nContent-Type: image/png; name=\"cut.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64Lines(big)[:len(base64Lines(big))/2]
	m := Parse([]byte(raw))
	if m.Unparsed || m.TextBody != "see attached" {
		t.Fatalf("Unparsed %v (%s), text %q", m.Unparsed, m.ParseError, m.TextBody)
	}
	if len(m.Attachments) != 2 {
		t.Fatalf("%d attachments, want big.bin and cut.png", len(m.Attachments))
	}
	a := m.Attachments[0]
	if a.Filename != "big.bin" || a.Open == nil || !bytes.Equal(content(t, a), big) || a.Size != int64(len(big)) {
		t.Errorf("big.bin: Open %v, size %d; want it streamed with the %d bytes sent", a.Open != nil, a.Size, len(big))
	}
	c := m.Attachments[1]
	if got := content(t, c); c.Filename != "cut.png" || int64(len(got)) != c.Size || !bytes.HasPrefix(big, got) || len(got) < maxHeldAttachment/2 {
		t.Errorf("cut.png: %d bytes (Size %d), want the first half of what was sent", len(got), c.Size)
	}
}
