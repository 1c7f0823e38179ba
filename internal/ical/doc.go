// Package ical writes iCalendar (RFC 5545) feeds of scheduled sessions: a
// VCALENDAR of VEVENTs whose DTSTART, EXDATE and RDATE are local times with
// a TZID, and a VTIMEZONE for every TZID, derived from Go's time.Location.
//
// Go's time package does not expose a zone's transitions, so VTimezone
// finds them by probing the Location (hourly, then to the second) and
// infers yearly rules (BYMONTH with BYDAY=nSU or -1SU) where the
// transitions follow one, listing the others. The package does no I/O
// beyond the io.Writer it is given and never reads the clock: DTSTAMP and
// the time zone range come from the caller.
//
// Output is canonical RFC 5545 text: CRLF line ends, content lines folded
// at 75 octets (never inside a UTF-8 sequence), TEXT values escaped
// (backslash, semicolon, comma, newline).
package ical
