package ical

import (
	"strings"
	"testing"
)

// This file is the tests' own small RFC 5545 reader: it checks the physical
// form (CRLF, 75 octets) while unfolding, then splits content lines into
// name, parameters and value, and nests them into components.

type prop struct {
	name   string
	params map[string]string
	value  string
}

type component struct {
	name  string
	props []prop
	subs  []*component
}

func (c *component) get(name string) []prop {
	var out []prop
	for _, p := range c.props {
		if p.name == name {
			out = append(out, p)
		}
	}
	return out
}

func (c *component) one(t *testing.T, name string) prop {
	t.Helper()
	ps := c.get(name)
	if len(ps) != 1 {
		t.Fatalf("%s has %d %s properties, want 1", c.name, len(ps), name)
	}
	return ps[0]
}

func (c *component) children(name string) []*component {
	var out []*component
	for _, s := range c.subs {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// unfold checks every physical line ends in CRLF and is at most 75 octets,
// that no fold splits a UTF-8 sequence, and returns the logical lines.
func unfold(t *testing.T, text string) []string {
	t.Helper()
	if !strings.HasSuffix(text, "\r\n") {
		t.Fatalf("output does not end in CRLF")
	}
	physical := strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n")
	var logical []string
	for i, l := range physical {
		if strings.ContainsAny(l, "\r\n") {
			t.Fatalf("line %d holds a bare CR or LF: %q", i+1, l)
		}
		if len(l) > 75 {
			t.Fatalf("line %d is %d octets (> 75): %q", i+1, len(l), l)
		}
		if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			if len(logical) == 0 {
				t.Fatalf("first line is a continuation")
			}
			if l[1:] != "" && l[1]&0xC0 == 0x80 {
				t.Fatalf("line %d starts inside a UTF-8 sequence", i+1)
			}
			logical[len(logical)-1] += l[1:]
			continue
		}
		logical = append(logical, l)
	}
	return logical
}

// parseLine splits "NAME;P=V;Q=\"x:y\":value".
func parseLine(t *testing.T, l string) prop {
	t.Helper()
	p := prop{params: map[string]string{}}
	i, quoted := 0, false
	for ; i < len(l); i++ {
		if l[i] == '"' {
			quoted = !quoted
		}
		if !quoted && l[i] == ':' {
			break
		}
	}
	if i == len(l) {
		t.Fatalf("content line without ':': %q", l)
	}
	head, value := l[:i], l[i+1:]
	parts := strings.Split(head, ";")
	p.name, p.value = parts[0], value
	for _, kv := range parts[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("parameter without '=' in %q", l)
		}
		p.params[k] = strings.Trim(v, `"`)
	}
	return p
}

// parse reads the text into its single top-level component.
func parse(t *testing.T, text string) *component {
	t.Helper()
	var stack []*component
	var root *component
	for _, l := range unfold(t, text) {
		p := parseLine(t, l)
		switch p.name {
		case "BEGIN":
			c := &component{name: p.value}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.subs = append(parent.subs, c)
			} else if root != nil {
				t.Fatalf("second top-level component %s", p.value)
			} else {
				root = c
			}
			stack = append(stack, c)
		case "END":
			if len(stack) == 0 || stack[len(stack)-1].name != p.value {
				t.Fatalf("END:%s does not close the open component", p.value)
			}
			stack = stack[:len(stack)-1]
		default:
			if len(stack) == 0 {
				t.Fatalf("property %s outside a component", p.name)
			}
			c := stack[len(stack)-1]
			c.props = append(c.props, p)
		}
	}
	if root == nil || len(stack) != 0 {
		t.Fatalf("unbalanced BEGIN/END")
	}
	return root
}

// unescapeText reverses RFC 5545 TEXT escaping.
func unescapeText(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ';' || c == ',' {
			t.Fatalf("unescaped %q in TEXT %q", c, s)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			t.Fatalf("TEXT %q ends in a backslash", s)
		}
		switch s[i] {
		case 'n', 'N':
			b.WriteByte('\n')
		case '\\', ';', ',':
			b.WriteByte(s[i])
		default:
			t.Fatalf("bad escape \\%c in %q", s[i], s)
		}
	}
	return b.String()
}
