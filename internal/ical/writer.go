package ical

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// DefaultProdID is the PRODID written when a Calendar gives none.
const DefaultProdID = "-//StreamSpace//Enterprise Scheduling//EN"

const (
	utcLayout   = "20060102T150405Z" // DATE-TIME in UTC (form #2)
	localLayout = "20060102T150405"  // DATE-TIME as local time (form #1, #3)
)

// Calendar is a VCALENDAR of events. Encode writes a VTIMEZONE for every
// zone an event starts in, derived (VTimezone) for the instants the events
// name, widened to ZonesFrom and ZonesUntil when they are set (a feed
// passes "now" and its horizon so irregular zones are listed far enough).
type Calendar struct {
	ProdID     string // PRODID; DefaultProdID when empty
	Name       string // X-WR-CALNAME, written when not empty
	Events     []Event
	ZonesFrom  time.Time
	ZonesUntil time.Time
}

// Event is one VEVENT. Start's Location is the event's zone: DTSTART,
// EXDATE and RDATE are written as local time there with its TZID.
type Event struct {
	UID             string
	Stamp           time.Time // DTSTAMP, written in UTC; required
	Start           time.Time
	DurationMinutes int    // DURATION, exact (PTnHnM), so T + minutes holds across DST
	Summary         string // SUMMARY
	Description     string // DESCRIPTION, written when not empty
	RRule           string // RRULE value ("FREQ=WEEKLY;BYDAY=MO"), "RRULE:" optional; UNTIL must be UTC
	ExDates         []time.Time
	RDates          []time.Time
	Status          string // "", TENTATIVE, CONFIRMED or CANCELLED
	Sequence        int    // SEQUENCE, written when > 0
}

// Encode writes c to w as RFC 5545 text: CRLF line ends, lines folded at 75
// octets, TEXT escaped. It writes nothing when an event is invalid.
func (c Calendar) Encode(w io.Writer) error {
	zones, err := c.zones()
	if err != nil {
		return err
	}
	var b strings.Builder
	lw := lineWriter{b: &b}
	lw.line("BEGIN", "VCALENDAR")
	lw.line("VERSION", "2.0")
	lw.line("PRODID", escapeText(cmp.Or(c.ProdID, DefaultProdID)))
	lw.line("CALSCALE", "GREGORIAN")
	lw.line("METHOD", "PUBLISH")
	if c.Name != "" {
		lw.line("X-WR-CALNAME", escapeText(c.Name))
	}
	for _, z := range zones {
		z.write(&lw)
	}
	for i, e := range c.Events {
		if err := e.write(&lw); err != nil {
			return fmt.Errorf("ical: event %d (uid %q): %w", i, e.UID, err)
		}
	}
	lw.line("END", "VCALENDAR")
	_, err = io.WriteString(w, b.String())
	return err
}

// Encode writes the VTIMEZONE alone (BEGIN:VTIMEZONE … END:VTIMEZONE).
func (z Timezone) Encode(w io.Writer) error {
	var b strings.Builder
	z.write(&lineWriter{b: &b})
	_, err := io.WriteString(w, b.String())
	return err
}

// zones derives one Timezone per zone name the events start in, sorted by
// name, each over the instants its events name.
func (c Calendar) zones() ([]Timezone, error) {
	type span struct {
		loc      *time.Location
		from, to time.Time
	}
	spans := map[string]*span{}
	widen := func(s *span, t time.Time) {
		if t.IsZero() {
			return
		}
		if s.from.IsZero() || t.Before(s.from) {
			s.from = t
		}
		if t.After(s.to) {
			s.to = t
		}
	}
	for _, e := range c.Events {
		loc := e.Start.Location()
		s, ok := spans[loc.String()]
		if !ok {
			s = &span{loc: loc}
			spans[loc.String()] = s
		}
		for _, t := range append(append([]time.Time{e.Start, c.ZonesFrom, c.ZonesUntil}, e.ExDates...), e.RDates...) {
			widen(s, t)
		}
	}
	names := make([]string, 0, len(spans))
	for n := range spans {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]Timezone, 0, len(names))
	for _, n := range names {
		s := spans[n]
		z, err := VTimezone(s.loc, s.from, s.to)
		if err != nil {
			return nil, err
		}
		out = append(out, z)
	}
	return out, nil
}

func (z Timezone) write(lw *lineWriter) {
	lw.line("BEGIN", "VTIMEZONE")
	lw.line("TZID", escapeText(z.ID))
	for _, o := range z.Observances {
		kind := "STANDARD"
		if o.Daylight {
			kind = "DAYLIGHT"
		}
		before := time.FixedZone("", o.OffsetFrom)
		lw.line("BEGIN", kind)
		lw.line("DTSTART", o.Onset.In(before).Format(localLayout))
		lw.line("TZOFFSETFROM", utcOffset(o.OffsetFrom))
		lw.line("TZOFFSETTO", utcOffset(o.OffsetTo))
		if o.Name != "" {
			lw.line("TZNAME", escapeText(o.Name))
		}
		if o.RRule != "" {
			lw.line("RRULE", o.RRule)
		}
		if len(o.RDates) > 0 {
			lw.line("RDATE", joinTimes(o.RDates, before, localLayout))
		}
		lw.line("END", kind)
	}
	lw.line("END", "VTIMEZONE")
}

func (e Event) write(lw *lineWriter) error {
	if strings.TrimSpace(e.UID) == "" {
		return errors.New("UID is empty")
	}
	if e.Stamp.IsZero() {
		return errors.New("DTSTAMP is not set")
	}
	if e.Start.IsZero() {
		return errors.New("DTSTART is not set")
	}
	if e.DurationMinutes < 0 {
		return fmt.Errorf("duration %d minutes is negative", e.DurationMinutes)
	}
	switch e.Status {
	case "", "TENTATIVE", "CONFIRMED", "CANCELLED":
	default:
		return fmt.Errorf("STATUS %q is not TENTATIVE, CONFIRMED or CANCELLED", e.Status)
	}
	rrule, err := checkRRule(e.RRule)
	if err != nil {
		return err
	}
	loc := e.Start.Location()
	tzid, err := paramValue(loc.String())
	if err != nil {
		return fmt.Errorf("TZID: %w", err)
	}
	withTZ := ";TZID=" + tzid
	lw.line("BEGIN", "VEVENT")
	lw.line("UID", escapeText(e.UID))
	lw.line("DTSTAMP", e.Stamp.UTC().Format(utcLayout))
	lw.line("DTSTART"+withTZ, e.Start.In(loc).Format(localLayout))
	lw.line("DURATION", Duration(e.DurationMinutes))
	lw.line("SUMMARY", escapeText(e.Summary))
	if e.Description != "" {
		lw.line("DESCRIPTION", escapeText(e.Description))
	}
	if rrule != "" {
		lw.line("RRULE", rrule)
	}
	if len(e.ExDates) > 0 {
		lw.line("EXDATE"+withTZ, joinTimes(e.ExDates, loc, localLayout))
	}
	if len(e.RDates) > 0 {
		lw.line("RDATE"+withTZ, joinTimes(e.RDates, loc, localLayout))
	}
	if e.Status != "" {
		lw.line("STATUS", e.Status)
	}
	if e.Sequence > 0 {
		lw.line("SEQUENCE", fmt.Sprint(e.Sequence))
	}
	lw.line("END", "VEVENT")
	return nil
}

// checkRRule returns the RRULE value without an "RRULE:" prefix, checking
// it can be written: no control characters, a FREQ part, and an UNTIL (if
// any) in UTC, which RFC 5545 §3.3.10 requires with a TZID DTSTART.
func checkRRule(v string) (string, error) {
	v = strings.TrimPrefix(v, "RRULE:")
	if v == "" {
		return "", nil
	}
	if err := checkRawValue(v); err != nil {
		return "", fmt.Errorf("RRULE: %w", err)
	}
	hasFreq := false
	for _, part := range strings.Split(v, ";") {
		name, val, _ := strings.Cut(part, "=")
		switch strings.ToUpper(name) {
		case "FREQ":
			hasFreq = true
		case "UNTIL":
			if _, err := time.Parse(utcLayout, val); err != nil {
				return "", fmt.Errorf("RRULE UNTIL %q is not a UTC date-time (YYYYMMDDTHHMMSSZ)", val)
			}
		}
	}
	if !hasFreq {
		return "", fmt.Errorf("RRULE %q has no FREQ", v)
	}
	return v, nil
}

// Duration renders minutes as an RFC 5545 §3.3.6 dur-value of exact time
// (PT1H30M, PT24H, PT0S). Days and weeks are avoided on purpose: in a
// VEVENT they are nominal, so "P1D" across a DST change would be 23 or 25
// hours, not the 1440 minutes asked for.
func Duration(minutes int) string {
	if minutes <= 0 {
		return "PT0S"
	}
	h, m := minutes/60, minutes%60
	s := "PT"
	if h > 0 {
		s += fmt.Sprintf("%dH", h)
	}
	if m > 0 {
		s += fmt.Sprintf("%dM", m)
	}
	return s
}

// utcOffset renders seconds east of UTC as RFC 5545 §3.3.14: +HHMM, with
// seconds (+HHMMSS) only when there are some.
func utcOffset(sec int) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	s := fmt.Sprintf("%s%02d%02d", sign, sec/3600, sec/60%60)
	if sec%60 != 0 {
		s += fmt.Sprintf("%02d", sec%60)
	}
	return s
}

func joinTimes(ts []time.Time, loc *time.Location, layout string) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.In(loc).Format(layout)
	}
	return strings.Join(parts, ",")
}

// lineWriter collects content lines, folded and CRLF-ended.
type lineWriter struct{ b *strings.Builder }

// line writes "name:value"; name may carry parameters (";TZID=…") and value
// must already be escaped or formatted.
func (lw *lineWriter) line(name, value string) {
	lw.b.WriteString(fold(name + ":" + value))
}
