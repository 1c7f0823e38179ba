package ical

import "strings"

// maxLineOctets is the longest content line RFC 5545 §3.1 allows, not
// counting the CRLF that ends it.
const maxLineOctets = 75

// fold returns one logical content line as the physical lines RFC 5545 §3.1
// wants: each at most 75 octets, each ended by CRLF, every continuation
// starting with a single space (which counts toward its 75). A cut never
// falls inside a UTF-8 sequence: it backs up to the sequence's first byte.
func fold(line string) string {
	var b strings.Builder
	b.Grow(len(line) + len(line)/maxLineOctets*3 + 2)
	limit := maxLineOctets
	for len(line) > limit {
		cut := limit
		for cut > 0 && isContinuationByte(line[cut]) {
			cut--
		}
		if cut == 0 { // not UTF-8 at all: cut where the limit says
			cut = limit
		}
		b.WriteString(line[:cut])
		b.WriteString("\r\n ")
		line = line[cut:]
		limit = maxLineOctets - 1 // the leading space takes one octet
	}
	b.WriteString(line)
	b.WriteString("\r\n")
	return b.String()
}

func isContinuationByte(c byte) bool { return c&0xC0 == 0x80 }
