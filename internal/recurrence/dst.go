package recurrence

import "time"

// Resolve turns a local wall time into the instant it runs at, by the DST
// policy in doc.go:
//   - a wall time that exists once is that instant;
//   - a wall time inside a fall-back overlap (it exists twice) is its first
//     occurrence (01:30 EDT, not 01:30 EST);
//   - a wall time inside a spring-forward gap (it does not exist) is the
//     moment of the jump (02:30 New York on 2026-03-08 is 03:00 EDT), not the
//     normalised 03:30 that time.Date gives.
//
// Resolve is monotonic: a later wall time never resolves to an earlier instant.
func Resolve(w Wall, loc *time.Location) time.Time {
	naive := time.Date(w.Year, w.Month, w.Day, w.Hour, w.Minute, 0, 0, time.UTC)
	// The instant is naive − offset, and offsets lie within −12 h … +14 h, so
	// the offsets in force at both ends of that window are the candidates.
	lo, hi := naive.Add(-14*time.Hour), naive.Add(12*time.Hour)
	before, after := offset(lo, loc), offset(hi, loc)
	var best time.Time
	for _, off := range []int{before, after} {
		u := naive.Add(-time.Duration(off) * time.Second)
		if wallOf(u.In(loc)) == w && (best.IsZero() || u.Before(best)) {
			best = u
		}
	}
	if !best.IsZero() {
		return best.UTC()
	}
	// A gap: before the jump the offset is `before`, after it `after`
	// (larger). w − after lies before the jump and w − before after it.
	return transition(naive.Add(-time.Duration(after)*time.Second),
		naive.Add(-time.Duration(before)*time.Second), loc).UTC()
}

func offset(t time.Time, loc *time.Location) int {
	_, off := t.In(loc).Zone()
	return off
}

// transition finds the first instant in (a, b] whose offset differs from a's:
// the zone's change between a and b. Zone changes fall on whole seconds.
func transition(a, b time.Time, loc *time.Location) time.Time {
	start := offset(a, loc)
	for b.Sub(a) > time.Second {
		mid := a.Add(b.Sub(a) / 2).Truncate(time.Second)
		if !mid.After(a) {
			mid = a.Add(time.Second)
		}
		if offset(mid, loc) == start {
			a = mid
		} else {
			b = mid
		}
	}
	return b
}
