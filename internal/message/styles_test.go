package message

import (
	"strings"
	"testing"
)

func TestMoveStylesToSheet(t *testing.T) {
	in := SanitizeHTML(`<p style="color: #c00; font-weight: bold">a</p><b style="font-weight:bold;color:#c00">b</b>`+
		`<span style="font-size: 20px; background-image: url(http://x/y)">c</span><i>d</i>`, func(string) string { return "" })
	body, css := MoveStylesToSheet(in)
	if strings.Contains(body, "style=") {
		t.Errorf("style attributes left in the body:\n%s", body)
	}
	want := ".postroom-s0{color:#c00;font-weight:bold}\n.postroom-s1{font-weight:bold;color:#c00}\n.postroom-s2{font-size:20px}\n"
	if css != want {
		t.Errorf("css =\n%s\nwant\n%s", css, want)
	}
	if !strings.Contains(body, `<p class="postroom-s0">a</p><b class="postroom-s1">b</b><span class="postroom-s2">c</span><i>d</i>`) {
		t.Errorf("body = %s", body)
	}
	if b, c := MoveStylesToSheet("<p>plain</p>"); c != "" || b != "<p>plain</p>" {
		t.Errorf("no styles: %q %q", b, c)
	}
}

// vetStyle is checked on its own, as if the sanitizer had let something through.
func TestVetStyleRefusesWhatCouldLoadOrEscape(t *testing.T) {
	for _, bad := range []string{
		"color: red}body{background:red", "color: url(http://x)", "background-color: image-set(x)",
		"color: expression(alert(1))", `color: "red"`, `color: \72 ed`, "position: fixed",
		"font-size: 10px</style><script>", "color: red /* c */",
	} {
		if got := vetStyle(bad); got != "" {
			t.Errorf("vetStyle(%q) = %q, want nothing", bad, got)
		}
	}
	if got := vetStyle("COLOR: rgb(0, 128, 0); text-align:center"); got != "color:rgb(0, 128, 0);text-align:center" {
		t.Errorf("vetStyle kept %q", got)
	}
}
