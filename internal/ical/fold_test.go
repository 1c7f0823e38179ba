package ical

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFoldKeepsLinesShortAndRoundTrips(t *testing.T) {
	cases := map[string]string{
		"short":      "SUMMARY:hello",
		"exactly 75": "X:" + strings.Repeat("a", 73),
		"76":         "X:" + strings.Repeat("a", 74),
		"long ascii": "DESCRIPTION:" + strings.Repeat("0123456789", 30),
		"2-byte":     "SUMMARY:" + strings.Repeat("é", 100),
		"3-byte":     "SUMMARY:" + strings.Repeat("日本語", 40),
		"4-byte":     "SUMMARY:" + strings.Repeat("🎓", 50),
		"mixed":      "SUMMARY:a" + strings.Repeat("ü日🎓x", 30),
	}
	for name, line := range cases {
		t.Run(name, func(t *testing.T) {
			got := unfold(t, fold(line))
			if len(got) != 1 || got[0] != line {
				t.Fatalf("unfolded %q, want %q", got, line)
			}
			for _, phys := range strings.Split(strings.TrimSuffix(fold(line), "\r\n"), "\r\n") {
				if !utf8.ValidString(phys) {
					t.Errorf("physical line %q is not valid UTF-8: a sequence was split", phys)
				}
			}
		})
	}
}

func TestFoldUsesFullLines(t *testing.T) {
	out := fold("X:" + strings.Repeat("a", 200))
	lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
	if len(lines[0]) != 75 || len(lines[1]) != 75 {
		t.Errorf("folded lines are %d and %d octets, want 75 each", len(lines[0]), len(lines[1]))
	}
	if !strings.HasPrefix(lines[1], " a") {
		t.Errorf("continuation %q does not start with one space", lines[1])
	}
}
