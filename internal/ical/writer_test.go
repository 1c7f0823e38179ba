package ical

import (
	"strings"
	"testing"
	"time"
)

func encode(t *testing.T, c Calendar) string {
	t.Helper()
	var b strings.Builder
	if err := c.Encode(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestEncodeGolden(t *testing.T) {
	stamp := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	got := encode(t, Calendar{Events: []Event{{
		UID: "schedule-1@streamspace", Stamp: stamp, Start: time.Date(2027, 1, 4, 9, 0, 0, 0, time.UTC),
		DurationMinutes: 90, Summary: "Review", RRule: "FREQ=DAILY;COUNT=3",
	}}})
	want := strings.Join([]string{
		"BEGIN:VCALENDAR",
		"VERSION:2.0",
		"PRODID:-//StreamSpace//Enterprise Scheduling//EN",
		"CALSCALE:GREGORIAN",
		"METHOD:PUBLISH",
		"BEGIN:VTIMEZONE",
		"TZID:UTC",
		"BEGIN:STANDARD",
		"DTSTART:20260103T090000",
		"TZOFFSETFROM:+0000",
		"TZOFFSETTO:+0000",
		"TZNAME:UTC",
		"END:STANDARD",
		"END:VTIMEZONE",
		"BEGIN:VEVENT",
		"UID:schedule-1@streamspace",
		"DTSTAMP:20261208T030000Z",
		"DTSTART;TZID=UTC:20270104T090000",
		"DURATION:PT1H30M",
		"SUMMARY:Review",
		"RRULE:FREQ=DAILY;COUNT=3",
		"END:VEVENT",
		"END:VCALENDAR",
		"",
	}, "\r\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEncodeCalendarWithZones(t *testing.T) {
	ny, tokyo := mustLoad(t, "America/New_York"), mustLoad(t, "Asia/Tokyo")
	stamp := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	start := time.Date(2027, 1, 4, 8, 55, 0, 0, ny)
	// holidays, one in winter (EST) and one in summer (EDT): both 08:55 local
	exWinter := time.Date(2027, 1, 18, 8, 55, 0, 0, ny)
	exSummer := time.Date(2027, 7, 5, 8, 55, 0, 0, ny)
	desc := "Maths class; 30 desktops, pre-warmed\\ready by 08:55.\nÉlèves: 日本語の授業も🎓 " + strings.Repeat("ü", 60)
	cal := Calendar{
		Name: "Alice's schedules, work; school",
		Events: []Event{
			{
				UID: "sched-a", Stamp: stamp, Start: start, DurationMinutes: 65, Summary: "Maths, room 4",
				Description: desc, RRule: "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20270630T125500Z",
				ExDates: []time.Time{exWinter, exSummer.UTC()}, Status: "CONFIRMED", Sequence: 2,
			},
			{
				UID: "sched-b", Stamp: stamp, Start: time.Date(2027, 2, 1, 14, 0, 0, 0, tokyo), DurationMinutes: 1440,
				Summary: "Cron", RDates: []time.Time{time.Date(2027, 2, 3, 5, 0, 0, 0, time.UTC)},
			},
			{UID: "sched-c", Stamp: stamp, Start: time.Date(2027, 3, 1, 9, 0, 0, 0, ny), Summary: "Once"},
		},
	}
	root := parse(t, encode(t, cal))
	if root.name != "VCALENDAR" || root.one(t, "VERSION").value != "2.0" || root.one(t, "CALSCALE").value != "GREGORIAN" {
		t.Fatalf("calendar header wrong: %+v", root.props)
	}
	if root.one(t, "PRODID").value != DefaultProdID {
		t.Errorf("PRODID %q", root.one(t, "PRODID").value)
	}
	if got := unescapeText(t, root.one(t, "X-WR-CALNAME").value); got != cal.Name {
		t.Errorf("X-WR-CALNAME %q, want %q", got, cal.Name)
	}

	zones := map[string]*component{}
	for _, z := range root.children("VTIMEZONE") {
		id := z.one(t, "TZID").value
		if zones[id] != nil {
			t.Errorf("VTIMEZONE %s written twice", id)
		}
		zones[id] = z
	}
	if len(zones) != 2 || zones["America/New_York"] == nil || zones["Asia/Tokyo"] == nil {
		t.Fatalf("VTIMEZONEs %v, want exactly New York and Tokyo", zones)
	}
	checkAgainstLocation(t, zones["America/New_York"], ny, start, time.Date(2027, 7, 6, 0, 0, 0, 0, time.UTC))

	events := root.children("VEVENT")
	if len(events) != 3 {
		t.Fatalf("%d VEVENTs, want 3", len(events))
	}
	for _, e := range events {
		tzid := e.one(t, "DTSTART").params["TZID"]
		if zones[tzid] == nil {
			t.Errorf("%s: DTSTART TZID %q has no VTIMEZONE", e.one(t, "UID").value, tzid)
		}
		if v := e.one(t, "DTSTAMP").value; v != "20261208T030000Z" {
			t.Errorf("DTSTAMP %q, want UTC 20261208T030000Z", v)
		}
	}
	a := events[0]
	checks := map[string]string{
		"UID": "sched-a", "DTSTART": "20270104T085500", "DURATION": "PT1H5M",
		"RRULE":  "FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20270630T125500Z",
		"EXDATE": "20270118T085500,20270705T085500", "STATUS": "CONFIRMED", "SEQUENCE": "2",
	}
	for name, want := range checks {
		if got := a.one(t, name).value; got != want {
			t.Errorf("event a %s = %q, want %q", name, got, want)
		}
	}
	if tz := a.one(t, "EXDATE").params["TZID"]; tz != "America/New_York" {
		t.Errorf("EXDATE TZID %q", tz)
	}
	if got := unescapeText(t, a.one(t, "DESCRIPTION").value); got != desc {
		t.Errorf("DESCRIPTION round trip %q, want %q", got, desc)
	}
	if got := unescapeText(t, a.one(t, "SUMMARY").value); got != "Maths, room 4" {
		t.Errorf("SUMMARY %q", got)
	}
	b := events[1]
	if b.one(t, "DURATION").value != "PT24H" || b.one(t, "RDATE").value != "20270203T140000" || b.one(t, "RDATE").params["TZID"] != "Asia/Tokyo" {
		t.Errorf("event b: DURATION %q RDATE %+v", b.one(t, "DURATION").value, b.one(t, "RDATE"))
	}
	c := events[2]
	for _, absent := range []string{"RRULE", "EXDATE", "RDATE", "DESCRIPTION", "STATUS", "SEQUENCE"} {
		if len(c.get(absent)) != 0 {
			t.Errorf("event c has %s though none was given", absent)
		}
	}
}

func TestEncodeRejectsBadEvents(t *testing.T) {
	stamp := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	ok := Event{UID: "u", Stamp: stamp, Start: time.Date(2027, 1, 4, 9, 0, 0, 0, mustLoad(t, "Europe/London")), Summary: "s"}
	cases := map[string]func(e *Event){
		"empty UID":         func(e *Event) { e.UID = " " },
		"no DTSTAMP":        func(e *Event) { e.Stamp = time.Time{} },
		"no DTSTART":        func(e *Event) { e.Start = time.Time{} },
		"negative duration": func(e *Event) { e.DurationMinutes = -5 },
		"local UNTIL":       func(e *Event) { e.RRule = "FREQ=DAILY;UNTIL=20270630T125500" },
		"line break":        func(e *Event) { e.RRule = "FREQ=DAILY\r\nATTENDEE:x" },
		"no FREQ":           func(e *Event) { e.RRule = "BYDAY=MO" },
		"bad STATUS":        func(e *Event) { e.Status = "DONE" },
		"Local zone":        func(e *Event) { e.Start = time.Date(2027, 1, 4, 9, 0, 0, 0, time.Local) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			e := ok
			mutate(&e)
			var b strings.Builder
			err := Calendar{Events: []Event{ok, e}}.Encode(&b)
			if err == nil {
				t.Fatalf("accepted:\n%s", b.String())
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", b.Len())
			}
		})
	}
	if err := (Calendar{Events: []Event{ok}}).Encode(&strings.Builder{}); err != nil {
		t.Fatalf("the valid event is refused: %v", err)
	}
}

func TestDuration(t *testing.T) {
	for min, want := range map[int]string{0: "PT0S", 5: "PT5M", 60: "PT1H", 90: "PT1H30M", 1440: "PT24H", 1505: "PT25H5M"} {
		if got := Duration(min); got != want {
			t.Errorf("Duration(%d) = %q, want %q", min, got, want)
		}
	}
}

func TestEncodeZonesUntilWidensTheZoneRange(t *testing.T) {
	sp := mustLoad(t, "America/Sao_Paulo")
	stamp := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	ev := Event{UID: "u", Stamp: stamp, Start: time.Date(2016, 1, 4, 9, 0, 0, 0, sp), Summary: "s", RRule: "FREQ=DAILY"}
	until := time.Date(2020, 12, 31, 0, 0, 0, 0, time.UTC)
	root := parse(t, encode(t, Calendar{Events: []Event{ev}, ZonesUntil: until}))
	checkAgainstLocation(t, root.children("VTIMEZONE")[0], sp, ev.Start, until)
}
