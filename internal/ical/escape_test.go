package ical

import "testing"

func TestEscapeText(t *testing.T) {
	cases := []struct{ in, want, back string }{
		{`plain`, `plain`, `plain`},
		{`a;b,c\d`, `a\;b\,c\\d`, `a;b,c\d`},
		{"line1\nline2\r\nline3\rline4", `line1\nline2\nline3\nline4`, "line1\nline2\nline3\nline4"},
		{"tab\there\x00\x07bell", "tab\therebell", "tab\therebell"},
		{"bad \xff utf8", "bad \uFFFD utf8", "bad \uFFFD utf8"},
		{`Réunion; 日本`, `Réunion\; 日本`, `Réunion; 日本`},
	}
	for _, c := range cases {
		got := escapeText(c.in)
		if got != c.want {
			t.Errorf("escapeText(%q) = %q, want %q", c.in, got, c.want)
		}
		if back := unescapeText(t, got); back != c.back {
			t.Errorf("unescape(escapeText(%q)) = %q, want %q", c.in, back, c.back)
		}
	}
}

func TestParamValue(t *testing.T) {
	if v, err := paramValue("America/New_York"); err != nil || v != "America/New_York" {
		t.Errorf("plain: %q, %v", v, err)
	}
	if v, err := paramValue("a:b"); err != nil || v != `"a:b"` {
		t.Errorf("colon not quoted: %q, %v", v, err)
	}
	if _, err := paramValue(`a"b`); err == nil {
		t.Errorf("double quote accepted")
	}
}
