package ical

import (
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the same zone data wherever the tests run
)

// onset is one observance onset as the tests read it back from the text.
type onset struct {
	at     time.Time
	offset int
	name   string
	dst    bool
}

// readOffset parses a TZOFFSETFROM/TO value.
func readOffset(t *testing.T, v string) int {
	t.Helper()
	if len(v) != 5 && len(v) != 7 || (v[0] != '+' && v[0] != '-') {
		t.Fatalf("bad utc-offset %q", v)
	}
	n := func(s string) int {
		x, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("bad utc-offset %q", v)
		}
		return x
	}
	sec := n(v[1:3])*3600 + n(v[3:5])*60
	if len(v) == 7 {
		sec += n(v[5:7])
	}
	if v[0] == '-' {
		sec = -sec
	}
	return sec
}

// expand reads a VTIMEZONE back and lists every onset up to limit,
// evaluating the RRULEs itself (by walking the days of the month, not with
// the package's arithmetic). It checks each RRULE's DTSTART is its first
// occurrence, as RFC 5545 requires.
func expand(t *testing.T, vtz *component, limit time.Time) []onset {
	t.Helper()
	var out []onset
	for _, o := range vtz.subs {
		if o.name != "STANDARD" && o.name != "DAYLIGHT" {
			t.Fatalf("unexpected %s in VTIMEZONE", o.name)
		}
		from := readOffset(t, o.one(t, "TZOFFSETFROM").value)
		base := onset{offset: readOffset(t, o.one(t, "TZOFFSETTO").value), dst: o.name == "DAYLIGHT"}
		if names := o.get("TZNAME"); len(names) == 1 {
			base.name = names[0].value
		}
		local := func(v string) time.Time {
			w, err := time.ParseInLocation("20060102T150405", v, time.FixedZone("", from))
			if err != nil {
				t.Fatalf("observance date-time %q: %v", v, err)
			}
			return w.UTC()
		}
		startText := o.one(t, "DTSTART").value
		start := local(startText)
		add := func(at time.Time) {
			x := base
			x.at = at
			out = append(out, x)
		}
		add(start)
		for _, rd := range o.get("RDATE") {
			for _, v := range strings.Split(rd.value, ",") {
				add(local(v))
			}
		}
		rrules := o.get("RRULE")
		if len(rrules) == 0 {
			continue
		}
		parts := map[string]string{}
		for _, kv := range strings.Split(rrules[0].value, ";") {
			k, v, _ := strings.Cut(kv, "=")
			parts[k] = v
		}
		if parts["FREQ"] != "YEARLY" {
			t.Fatalf("RRULE %q is not yearly", rrules[0].value)
		}
		month, _ := strconv.Atoi(parts["BYMONTH"])
		byday := parts["BYDAY"]
		n, _ := strconv.Atoi(byday[:len(byday)-2])
		wd := strings.Index("SUMOTUWETHFRSA", byday[len(byday)-2:]) / 2
		until := limit
		if u, ok := parts["UNTIL"]; ok {
			var err error
			if until, err = time.Parse("20060102T150405Z", u); err != nil {
				t.Fatalf("UNTIL %q is not UTC: %v", u, err)
			}
		}
		clock := startText[9:]
		startIsOccurrence := false
		for y := start.Year() - 1; y <= limit.Year()+1; y++ {
			var days []int
			for d := 1; d <= 31; d++ {
				day := time.Date(y, time.Month(month), d, 0, 0, 0, 0, time.UTC)
				if day.Month() == time.Month(month) && int(day.Weekday()) == wd {
					days = append(days, d)
				}
			}
			d := days[len(days)-1]
			if n > 0 {
				d = days[n-1]
			}
			at := local(strconv.Itoa(y) + time.Date(y, time.Month(month), d, 0, 0, 0, 0, time.UTC).Format("0102") + "T" + clock)
			if at.Equal(start) {
				startIsOccurrence = true // already added
				continue
			}
			if at.Before(start) || at.After(until) || at.After(limit) {
				continue
			}
			add(at)
		}
		if !startIsOccurrence {
			t.Errorf("%s DTSTART %s is not an occurrence of %s", o.name, startText, rrules[0].value)
		}
	}
	return out
}

// offsetAt is what the VTIMEZONE says holds at instant: the latest onset
// at or before it.
func offsetAt(onsets []onset, instant time.Time) (onset, bool) {
	var best onset
	found := false
	for _, o := range onsets {
		if !o.at.After(instant) && (!found || o.at.After(best.at)) {
			best, found = o, true
		}
	}
	return best, found
}

// checkAgainstLocation compares the VTIMEZONE with loc around every onset
// it claims (one second before, at, an hour after) and every 30 minutes
// over [from, until] (every real transition is on a half hour, so a missing
// one shows up).
func checkAgainstLocation(t *testing.T, vtz *component, loc *time.Location, from, until time.Time) []onset {
	t.Helper()
	onsets := expand(t, vtz, until)
	check := func(instant time.Time) {
		t.Helper()
		got, ok := offsetAt(onsets, instant)
		lt := instant.In(loc)
		name, off := lt.Zone()
		if !ok {
			t.Fatalf("%s: no observance covers %s", loc, instant)
		}
		if got.offset != off || got.name != name || got.dst != lt.IsDST() {
			t.Fatalf("%s at %s: VTIMEZONE says %+d %s dst=%v, Location says %+d %s dst=%v",
				loc, instant.UTC(), got.offset, got.name, got.dst, off, name, lt.IsDST())
		}
	}
	for _, o := range onsets {
		if o.at.Before(from) || o.at.After(until) {
			continue
		}
		check(o.at.Add(-time.Second))
		check(o.at)
		check(o.at.Add(time.Hour))
	}
	for x := from; !x.After(until); x = x.Add(30 * time.Minute) {
		check(x)
	}
	return onsets
}

func vtimezoneText(t *testing.T, loc *time.Location, from, to time.Time) *component {
	t.Helper()
	z, err := VTimezone(loc, from, to)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := z.Encode(&b); err != nil {
		t.Fatal(err)
	}
	vtz := parse(t, b.String())
	if vtz.name != "VTIMEZONE" || vtz.one(t, "TZID").value != loc.String() {
		t.Fatalf("not the VTIMEZONE of %s:\n%s", loc, b.String())
	}
	return vtz
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// rules lists "KIND RRULE" of the observances, for shape checks.
func rules(vtz *component) []string {
	var out []string
	for _, o := range vtz.subs {
		r := ""
		if rr := o.get("RRULE"); len(rr) > 0 {
			r = rr[0].value
		}
		out = append(out, o.name+" "+r)
	}
	return out
}

func TestVTimezoneRegularZonesUseOpenYearlyRules(t *testing.T) {
	cases := map[string][]string{
		"America/New_York":    {"DAYLIGHT FREQ=YEARLY;BYMONTH=3;BYDAY=2SU", "STANDARD FREQ=YEARLY;BYMONTH=11;BYDAY=1SU"},
		"Europe/London":       {"DAYLIGHT FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "STANDARD FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"},
		"Australia/Sydney":    {"STANDARD FREQ=YEARLY;BYMONTH=4;BYDAY=1SU", "DAYLIGHT FREQ=YEARLY;BYMONTH=10;BYDAY=1SU"},
		"Australia/Lord_Howe": {"STANDARD FREQ=YEARLY;BYMONTH=4;BYDAY=1SU", "DAYLIGHT FREQ=YEARLY;BYMONTH=10;BYDAY=1SU"},
	}
	from, to := date(2025, time.June, 1), date(2027, time.June, 1)
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			loc := mustLoad(t, name)
			vtz := vtimezoneText(t, loc, from, to)
			got := rules(vtz)
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("observances %q, want %q", got, want)
			}
			// open rules hold beyond the range too
			checkAgainstLocation(t, vtz, loc, from, to.AddDate(10, 0, 0))
		})
	}
}

func TestVTimezoneLordHoweHalfHourShift(t *testing.T) {
	loc := mustLoad(t, "Australia/Lord_Howe")
	vtz := vtimezoneText(t, loc, date(2026, time.January, 1), date(2026, time.December, 31))
	daylight := vtz.children("DAYLIGHT")
	if len(daylight) == 0 {
		t.Fatal("Lord Howe has no DAYLIGHT observance")
	}
	for _, o := range daylight {
		if f, to := o.one(t, "TZOFFSETFROM").value, o.one(t, "TZOFFSETTO").value; f != "+1030" || to != "+1100" {
			t.Errorf("Lord Howe DAYLIGHT %s -> %s, want +1030 -> +1100", f, to)
		}
	}
}

func TestVTimezoneZonesWithoutDSTGiveOneStandard(t *testing.T) {
	for _, name := range []string{"Asia/Tokyo", "Asia/Kolkata", "UTC"} {
		t.Run(name, func(t *testing.T) {
			loc := mustLoad(t, name)
			from, to := date(2024, time.March, 1), date(2030, time.March, 1)
			vtz := vtimezoneText(t, loc, from, to)
			if len(vtz.subs) != 1 || vtz.subs[0].name != "STANDARD" {
				t.Fatalf("observances %q, want one STANDARD", rules(vtz))
			}
			f, o := vtz.subs[0].one(t, "TZOFFSETFROM").value, vtz.subs[0].one(t, "TZOFFSETTO").value
			if f != o {
				t.Errorf("TZOFFSETFROM %s != TZOFFSETTO %s", f, o)
			}
			checkAgainstLocation(t, vtz, loc, from, to)
		})
	}
}

// Zones whose rules changed in the range: the US moved its dates in 2007,
// Brazil moved the start in 2018 and abolished DST in 2019, Iran abolished
// it in 2022 (and used fixed dates, not weekdays, before).
func TestVTimezoneRuleChangesAndAbolishedDST(t *testing.T) {
	cases := []struct {
		zone     string
		from, to time.Time
	}{
		{"America/New_York", date(2004, time.January, 1), date(2010, time.December, 31)},
		{"America/Sao_Paulo", date(2015, time.January, 1), date(2022, time.December, 31)},
		{"Asia/Tehran", date(2019, time.January, 1), date(2025, time.December, 31)},
		{"Europe/Istanbul", date(2014, time.January, 1), date(2018, time.December, 31)},
	}
	for _, c := range cases {
		t.Run(c.zone, func(t *testing.T) {
			loc := mustLoad(t, c.zone)
			vtz := vtimezoneText(t, loc, c.from, c.to)
			checkAgainstLocation(t, vtz, loc, c.from, c.to.AddDate(3, 0, 0))
		})
	}
	t.Run("abolished DST leaves no open DAYLIGHT rule", func(t *testing.T) {
		vtz := vtimezoneText(t, mustLoad(t, "America/Sao_Paulo"), date(2015, time.January, 1), date(2022, time.December, 31))
		for _, o := range vtz.children("DAYLIGHT") {
			if rr := o.get("RRULE"); len(rr) > 0 && !strings.Contains(rr[0].value, "UNTIL=") {
				t.Errorf("DAYLIGHT %s repeats forever though Brazil abolished DST in 2019", rr[0].value)
			}
		}
	})
	t.Run("the US 2007 change splits the rules", func(t *testing.T) {
		got := strings.Join(rules(vtimezoneText(t, mustLoad(t, "America/New_York"), date(2004, time.January, 1), date(2010, time.December, 31))), "|")
		for _, want := range []string{"BYMONTH=4;BYDAY=1SU;UNTIL=20060402T070000Z", "BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T060000Z", "BYMONTH=3;BYDAY=2SU|", "BYMONTH=11;BYDAY=1SU"} {
			if !strings.Contains(got+"|", want) {
				t.Errorf("observances %q lack %q", got, want)
			}
		}
	})
}

func TestVTimezoneRejectsUnnamedZones(t *testing.T) {
	if _, err := VTimezone(time.Local, date(2026, 1, 1), date(2027, 1, 1)); err == nil {
		t.Error("time.Local accepted: its name is not an IANA zone")
	}
	if _, err := VTimezone(time.FixedZone("", 3600), date(2026, 1, 1), date(2027, 1, 1)); err == nil {
		t.Error("unnamed fixed zone accepted")
	}
	if _, err := VTimezone(time.UTC, date(2027, 1, 1), date(2026, 1, 1)); err == nil {
		t.Error("range ending before it starts accepted")
	}
}

func TestUTCOffsetFormat(t *testing.T) {
	for sec, want := range map[int]string{0: "+0000", 19800: "+0530", -18000: "-0500", 37800: "+1030", -17762: "-045602"} {
		if got := utcOffset(sec); got != want {
			t.Errorf("utcOffset(%d) = %q, want %q", sec, got, want)
		}
	}
}
