package recurrence

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

var icalDays = [7]string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}

// RRule renders the plan as an RFC 5545 RRULE value (without "RRULE:"), for
// a DTSTART;TZID=<zone> at the first occurrence's wall time. The rule names
// its BYHOUR/BYMINUTE so it does not depend on DTSTART's time. ends_on becomes
// UNTIL, in UTC, at the end of that local day. ok is false for once (DTSTART
// alone says it) and for cron expressions RRULE cannot say (both day fields
// restricted: cron ORs them, RRULE ANDs its BY parts).
//
// Calendar apps expand a wall time inside a DST gap as RFC 5545 §3.3.5 says
// (with the offset before the gap: 02:30 → 03:30), not at the jump as Next
// does; GapShifts lists those occurrences for EXDATE/RDATE pairs. (An overlap
// is read as its first occurrence by both.)
func (s *Schedule) RRule() (string, bool) {
	var parts []string
	at := func(hours, minutes []bool) {
		parts = append(parts, "BYHOUR="+list(hours, 0), "BYMINUTE="+list(minutes, 0), "BYSECOND=0")
	}
	one := func(v int) []bool { b := make([]bool, v+1); b[v] = true; return b }
	switch s.plan.Type {
	case Daily:
		parts = append(parts, "FREQ=DAILY")
		at(one(s.hour), one(s.min))
	case Weekly:
		var days []string
		for _, d := range []time.Weekday{1, 2, 3, 4, 5, 6, 0} {
			if s.weekdays[d] {
				days = append(days, icalDays[d])
			}
		}
		parts = append(parts, "FREQ=WEEKLY", "BYDAY="+strings.Join(days, ","))
		at(one(s.hour), one(s.min))
	case Monthly:
		parts = append(parts, "FREQ=MONTHLY", monthDayRule(s.plan.DayOfMonth))
		at(one(s.hour), one(s.min))
	case Cron:
		c := s.cron
		if !c.domStar && !c.dowStar {
			return "", false
		}
		parts = append(parts, "FREQ=DAILY")
		if l := list(c.month, 1); l != list(allOf(12), 1) {
			parts = append(parts, "BYMONTH="+l)
		}
		if !c.domStar {
			parts = append(parts, "BYMONTHDAY="+list(c.dom, 1))
		}
		if l := list(c.dow, 0); l != list(allOf(6), 0) {
			var days []string
			for d, ok := range c.dow {
				if ok {
					days = append(days, icalDays[d])
				}
			}
			parts = append(parts, "BYDAY="+strings.Join(days, ","))
		}
		at(c.hour, c.minute)
	default:
		return "", false
	}
	if s.endsOn != nil {
		end := Resolve(Wall{Date: s.endsOn.AddDays(1)}, s.loc).Add(-time.Second)
		parts = append(parts, "UNTIL="+end.UTC().Format("20060102T150405Z"))
	}
	return strings.Join(parts, ";"), true
}

// monthDayRule says "day d, or the month's last day when it is shorter".
func monthDayRule(d int) string {
	switch {
	case d <= 28:
		return "BYMONTHDAY=" + strconv.Itoa(d)
	case d == 31:
		return "BYMONTHDAY=-1"
	default: // 29, 30: the last of 28…d that the month has
		var days []string
		for i := 28; i <= d; i++ {
			days = append(days, strconv.Itoa(i))
		}
		return "BYMONTHDAY=" + strings.Join(days, ",") + ";BYSETPOS=-1"
	}
}

func allOf(max int) []bool {
	b := make([]bool, max+1)
	for i := range b {
		b[i] = true
	}
	return b
}

// list renders the members of set from index first on as "1,2,3".
func list(set []bool, first int) string {
	var out []string
	for v := first; v < len(set); v++ {
		if set[v] {
			out = append(out, strconv.Itoa(v))
		}
	}
	return strings.Join(out, ",")
}

// ExDates are the wall times the plan would have run at on its excluded dates
// (within starts_on…ends_on), in order: the EXDATE;TZID=<zone> values
// (Wall.ICal) that cancel them in the RRULE's expansion.
func (s *Schedule) ExDates() []Wall {
	var dates []Date
	for d := range s.exclusions {
		dates = append(dates, d)
	}
	slices.SortFunc(dates, func(a, b Date) int { return a.utc().Compare(b.utc()) })
	var out []Wall
	for _, d := range dates {
		if (s.startsOn != nil && d.Before(*s.startsOn)) || (s.endsOn != nil && s.endsOn.Before(d)) {
			continue
		}
		if s.plan.Type == Once {
			if w := wallOf(s.startAt.In(s.loc)); w.Date == d {
				out = append(out, w)
			}
			continue
		}
		out = slices.AppendSeq(out, s.walls(d, 0))
	}
	return out
}

// Shift is an occurrence whose wall time falls in a DST gap: the plan names
// Wall, and it runs at At (the jump).
type Shift struct {
	Wall Wall
	At   time.Time
}

// GapShifts are the occurrences in (from, to] that run at a gap's jump
// rather than at their named wall time, in order. A feed cancels each named
// time (EXDATE, Shift.Wall.ICal()) and adds the real one (RDATE, At in the
// zone) so calendar apps show when the session really starts.
func (s *Schedule) GapShifts(from, to time.Time) []Shift {
	var out []Shift
	for {
		w, t, ok := s.next(from)
		if !ok || t.After(to) {
			return out
		}
		if wallOf(t.In(s.loc)) != w {
			out = append(out, Shift{w, t})
		}
		from = t
	}
}
