package recurrence

import "time"

// searchDays bounds the search for the next occurrence: more than eight years,
// so a cron expression for February 29 finds its next leap year (2096 → 2104).
const searchDays = 9 * 366

// Next is the first occurrence strictly after `after`, as a UTC instant,
// honouring starts_on, ends_on and exclusions. ok is false when there is none.
func (s *Schedule) Next(after time.Time) (time.Time, bool) {
	_, t, ok := s.next(after)
	return t, ok
}

// next is Next with the wall time the occurrence was named by.
func (s *Schedule) next(after time.Time) (Wall, time.Time, bool) {
	if s.plan.Type == Once {
		w := wallOf(s.startAt.In(s.loc))
		if s.startAt.After(after) && s.inRange(w.Date) {
			return w, s.startAt, true
		}
		return Wall{}, time.Time{}, false
	}
	// Resolve is monotonic and the wall time of `after` resolves to `after`
	// or earlier, so no wall time before it can resolve after it.
	from := wallOf(after.In(s.loc))
	d, fromMinute := from.Date, from.Hour*60+from.Minute
	if s.startsOn != nil && d.Before(*s.startsOn) {
		d, fromMinute = *s.startsOn, 0
	}
	for i := 0; i < searchDays; i++ {
		if s.endsOn != nil && s.endsOn.Before(d) {
			break
		}
		if s.inRange(d) {
			for w := range s.walls(d, fromMinute) {
				if t := Resolve(w, s.loc); t.After(after) {
					return w, t, true
				}
			}
		}
		d, fromMinute = d.AddDays(1), 0
	}
	return Wall{}, time.Time{}, false
}

// NextN is up to n occurrences strictly after `after`, in order.
func (s *Schedule) NextN(after time.Time, n int) []time.Time {
	var out []time.Time
	for len(out) < n {
		t, ok := s.Next(after)
		if !ok {
			break
		}
		out = append(out, t)
		after = t
	}
	return out
}

// MinGap is the shortest time between two consecutive occurrences in
// (from, from+horizon]. ok is false when fewer than two occur there. It stops
// at the first gap of a minute or less: plans name whole minutes, so nothing
// shorter can follow, and pre-warm is counted in minutes.
func (s *Schedule) MinGap(from time.Time, horizon time.Duration) (time.Duration, bool) {
	end := from.Add(horizon)
	prev, ok := s.Next(from)
	if !ok || prev.After(end) {
		return 0, false
	}
	var gap time.Duration
	found := false
	for {
		t, ok := s.Next(prev)
		if !ok || t.After(end) {
			return gap, found
		}
		if g := t.Sub(prev); !found || g < gap {
			gap, found = g, true
		}
		if gap <= time.Minute {
			return gap, true
		}
		prev = t
	}
}

// PrewarmStart is when a run for the occurrence starts: `minutes` before it as
// an instant, whatever the local calendar does in between (a Monday 00:02 run
// with 5 minutes starts on Sunday at 23:57 local).
func PrewarmStart(occurrence time.Time, minutes int) time.Time {
	return occurrence.Add(-time.Duration(minutes) * time.Minute)
}
