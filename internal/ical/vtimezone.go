package ical

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Timezone is a VTIMEZONE derived from a *time.Location: its observances
// give, for every instant of the range it was made for, the offset and
// abbreviation the Location gives.
type Timezone struct {
	ID          string // the TZID: the Location's IANA name
	Observances []Observance
}

// Observance is one STANDARD or DAYLIGHT sub-component. Onset and RDates
// are instants; they are written as local time in OffsetFrom, as RFC 5545
// §3.6.5 wants. RRule, when set, repeats Onset yearly ("FREQ=YEARLY;
// BYMONTH=3;BYDAY=2SU"), with UNTIL (UTC) when the rule stops.
type Observance struct {
	Daylight   bool
	Onset      time.Time
	OffsetFrom int // seconds east of UTC before the onset
	OffsetTo   int // seconds east of UTC from the onset
	Name       string
	RRule      string
	RDates     []time.Time
}

// futureYears is how many years after the last transition in range a
// yearly rule must keep predicting the Location's transitions for the
// observance to be written without UNTIL.
const futureYears = 8

// VTimezone derives loc's VTIMEZONE for the instants from..to. Go's time
// package does not expose transitions, so they are found by probing: the
// zone (abbreviation, offset, DST flag) is read every hour from a year
// before from (so the observance in force at from is included) to to, and
// each change is refined by binary search to the second. Transitions of
// the same kind that fall on the same nth (or last) weekday of the same
// month at the same local time in consecutive years become one observance
// with a yearly RRULE; it has no UNTIL when the rule also predicts the
// Location's next futureYears transitions, else UNTIL its last occurrence.
// Other transitions are listed (DTSTART and RDATEs). A zone without
// transitions in the window (UTC, Asia/Tokyo) gives one STANDARD. Two
// changes within one hour that cancel out are not seen.
func VTimezone(loc *time.Location, from, to time.Time) (Timezone, error) {
	if loc == nil {
		return Timezone{}, errors.New("ical: nil location")
	}
	id := loc.String()
	if id == "" || id == "Local" {
		return Timezone{}, fmt.Errorf("ical: location %q is not an IANA zone name", id)
	}
	if to.Before(from) {
		return Timezone{}, fmt.Errorf("ical: time zone range ends (%s) before it starts (%s)", to, from)
	}
	start := from.AddDate(-1, 0, -1).Unix()
	trs := transitions(loc, start, to.Unix())
	z := Timezone{ID: id}
	if len(trs) == 0 || trs[0].at.After(from) {
		s := stateAt(loc, start)
		z.Observances = append(z.Observances, Observance{
			Daylight: s.dst, Onset: time.Unix(start, 0).UTC(),
			OffsetFrom: s.offset, OffsetTo: s.offset, Name: s.name,
		})
	}
	for _, group := range groupByKind(trs) {
		z.Observances = append(z.Observances, observances(loc, group)...)
	}
	sort.SliceStable(z.Observances, func(i, j int) bool {
		return z.Observances[i].Onset.Before(z.Observances[j].Onset)
	})
	return z, nil
}

// zoneState is what a Location says about an instant.
type zoneState struct {
	name   string
	offset int
	dst    bool
}

func stateAt(loc *time.Location, unix int64) zoneState {
	t := time.Unix(unix, 0).In(loc)
	name, offset := t.Zone()
	return zoneState{name: name, offset: offset, dst: t.IsDST()}
}

type transition struct {
	at            time.Time // first instant of the new state (UTC)
	before, after zoneState
}

// transitions probes loc hourly over [from, to] (Unix seconds) and refines
// each change to the second.
func transitions(loc *time.Location, from, to int64) []transition {
	var out []transition
	prev := stateAt(loc, from)
	for lo := from; lo < to; {
		hi := min(lo+3600, to)
		cur := stateAt(loc, hi)
		if cur != prev {
			a, b := lo, hi // stateAt(a) == prev, stateAt(b) != prev
			for b-a > 1 {
				m := a + (b-a)/2
				if stateAt(loc, m) == prev {
					a = m
				} else {
					b = m
				}
			}
			after := stateAt(loc, b)
			out = append(out, transition{at: time.Unix(b, 0).UTC(), before: prev, after: after})
			prev, lo = after, b
			continue
		}
		lo = hi
	}
	return out
}

// groupByKind splits transitions by (state before, state after), keeping
// time order in each group and the groups in order of first appearance.
func groupByKind(trs []transition) [][]transition {
	type kind struct{ before, after zoneState }
	index := map[kind]int{}
	var groups [][]transition
	for _, t := range trs {
		k := kind{t.before, t.after}
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], t)
	}
	return groups
}

// yearlyRule is "the nth (or, n = -1, last) weekday of month at wall-clock
// time hh:mm:ss in offset".
type yearlyRule struct {
	month      time.Month
	weekday    time.Weekday
	n          int
	clock      int // seconds after local midnight
	offsetFrom int
}

// rulesFor gives the rules that transition at fits: its nth weekday of the
// month (n ≤ 4) and, when it is in the month's last seven days, the last.
func rulesFor(t transition) []yearlyRule {
	local := t.at.In(time.FixedZone("", t.before.offset))
	base := yearlyRule{
		month: local.Month(), weekday: local.Weekday(), offsetFrom: t.before.offset,
		clock: local.Hour()*3600 + local.Minute()*60 + local.Second(),
	}
	var out []yearlyRule
	if n := (local.Day()-1)/7 + 1; n <= 4 {
		r := base
		r.n = n
		out = append(out, r)
	}
	if local.Day()+7 > daysIn(local.Year(), local.Month()) {
		r := base
		r.n = -1
		out = append(out, r)
	}
	return out
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// in gives the rule's instant in year.
func (r yearlyRule) in(year int) time.Time {
	var day int
	if r.n > 0 {
		first := time.Date(year, r.month, 1, 0, 0, 0, 0, time.UTC).Weekday()
		day = 1 + (int(r.weekday)-int(first)+7)%7 + 7*(r.n-1)
	} else {
		last := daysIn(year, r.month)
		lastWd := time.Date(year, r.month, last, 0, 0, 0, 0, time.UTC).Weekday()
		day = last - (int(lastWd)-int(r.weekday)+7)%7
	}
	wall := time.Date(year, r.month, day, 0, 0, r.clock, 0, time.UTC)
	return wall.Add(-time.Duration(r.offsetFrom) * time.Second)
}

func (r yearlyRule) rrule() string {
	return fmt.Sprintf("FREQ=YEARLY;BYMONTH=%d;BYDAY=%d%s", int(r.month), r.n, weekdayCodes[r.weekday])
}

var weekdayCodes = [...]string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}

// predictsFuture reports whether r also gives loc's next futureYears
// transitions of this kind after the one at last.
func (r yearlyRule) predictsFuture(loc *time.Location, last transition) bool {
	for y := localYear(last) + 1; y <= localYear(last)+futureYears; y++ {
		at := r.in(y).Unix()
		if stateAt(loc, at-1) != last.before || stateAt(loc, at) != last.after {
			return false
		}
	}
	return true
}

// localYear is the year of t's onset in local time (the offset before it).
func localYear(t transition) int {
	return t.at.In(time.FixedZone("", t.before.offset)).Year()
}

// observances turns one group of same-kind transitions into observances:
// runs of consecutive years that one yearly rule gives become an RRULE
// observance, the rest one listed observance (DTSTART and RDATEs).
func observances(loc *time.Location, group []transition) []Observance {
	first := group[0]
	base := Observance{
		Daylight: first.after.dst, OffsetFrom: first.before.offset,
		OffsetTo: first.after.offset, Name: first.after.name,
	}
	var out []Observance
	var listed []time.Time
	for i := 0; i < len(group); {
		rules, n := longestRuns(group[i:])
		rule, open := rules[0], false
		if i+n == len(group) { // the group's last run: may it stay open?
			for _, r := range rules {
				if r.predictsFuture(loc, group[len(group)-1]) {
					rule, open = r, true
					break
				}
			}
		}
		if n < 2 && !open {
			listed = append(listed, group[i].at)
			i++
			continue
		}
		o := base
		o.Onset = group[i].at
		o.RRule = rule.rrule()
		if !open {
			o.RRule += ";UNTIL=" + group[i+n-1].at.Format(utcLayout)
		}
		out = append(out, o)
		i += n
	}
	if len(listed) > 0 {
		o := base
		o.Onset, o.RDates = listed[0], listed[1:]
		out = append(out, o)
	}
	return out
}

// longestRuns finds the yearly rules that give the most of trs's leading
// transitions, one a year in consecutive years, and how many they give
// (at least one rule, giving at least trs[0]). Several rules can tie: the
// "4th" and the "last" Sunday agree in some years.
func longestRuns(trs []transition) ([]yearlyRule, int) {
	var best []yearlyRule
	bestN := 1
	y0 := localYear(trs[0])
	for _, r := range rulesFor(trs[0]) {
		n := 1
		for n < len(trs) && trs[n].at.Equal(r.in(y0+n)) {
			n++
		}
		switch {
		case n > bestN:
			best, bestN = []yearlyRule{r}, n
		case n == bestN:
			best = append(best, r)
		}
	}
	return best, bestN
}
