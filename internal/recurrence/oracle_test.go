package recurrence

import (
	"testing"
	"time"
)

// oracle derives a cron expression's runs independently of Resolve: it walks
// real time minute by minute, reads the local wall clock, and fires when the
// clock shows (or jumps over) a named wall time it has not shown before.
func oracle(c *cronSpec, loc *time.Location, from, to time.Time) []time.Time {
	matches := func(w Wall) bool { return c.matchesDate(w.Date) && c.hour[w.Hour] && c.minute[w.Minute] }
	naive := func(w Wall) time.Time { return time.Date(w.Year, w.Month, w.Day, w.Hour, w.Minute, 0, 0, time.UTC) }
	seen := map[Wall]bool{}
	var out []time.Time
	prev := wallOf(from.In(loc))
	for u := from.Add(time.Minute); !u.After(to); u = u.Add(time.Minute) {
		w := wallOf(u.In(loc))
		fire := false
		// Wall times the clock jumped over (a gap) fire at the jump.
		for v := naive(prev).Add(time.Minute); v.Before(naive(w)); v = v.Add(time.Minute) {
			if vw := wallOf(v); matches(vw) && !seen[vw] {
				seen[vw], fire = true, true
			}
		}
		if matches(w) && !seen[w] {
			seen[w], fire = true, true
		}
		if fire {
			out = append(out, u)
		}
		prev = w
	}
	return out
}

func TestCronAgreesWithWallClockWalk(t *testing.T) {
	windows := []struct{ zone, from string }{
		{"America/New_York", "2026-03-07T12:00:00Z"},
		{"America/New_York", "2026-10-31T12:00:00Z"},
		{"Europe/London", "2026-03-28T12:00:00Z"},
		{"Europe/London", "2026-10-24T12:00:00Z"},
		{"Australia/Sydney", "2026-04-03T12:00:00Z"},
		{"Australia/Sydney", "2026-10-02T12:00:00Z"},
		{"Australia/Lord_Howe", "2026-04-03T12:00:00Z"},
		{"Australia/Lord_Howe", "2026-10-02T12:00:00Z"},
	}
	exprs := []string{"*/15 * * * *", "30 2 * * *", "0,30 1-3 * * *", "45 * * * *", "*/7 0-4 * * SUN", "5 1,2 * * *"}
	for _, win := range windows {
		for _, expr := range exprs {
			s := compile(t, Plan{Type: Cron, CronExpression: expr, Timezone: win.zone})
			from := utc(t, win.from)
			to := from.Add(3 * 24 * time.Hour)
			want := oracle(s.cron, s.loc, from, to)
			var got []time.Time
			for _, g := range s.NextN(from, len(want)+1) {
				if !g.After(to) {
					got = append(got, g)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%s %q from %s: %d runs, the walk gives %d", win.zone, expr, win.from, len(got), len(want))
			}
			for i := range want {
				if !got[i].Equal(want[i]) {
					t.Fatalf("%s %q: run %d at %s, the walk gives %s", win.zone, expr, i, got[i], want[i])
				}
			}
		}
	}
}
