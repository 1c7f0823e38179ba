package recurrence

import "testing"

// The DST policy for daily plans at both 2026 changes in four zones: a gap
// runs at the jump, an overlap at its first pass, and the next day is back on
// the stated wall time.
func TestDailyAcrossDST(t *testing.T) {
	cases := []struct {
		name, zone, at, after string
		want                  []string
	}{
		{"New York 09:00 spring (instant moves, wall stays)", "America/New_York", "09:00", "2026-03-06T15:00:00Z",
			[]string{"2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"}},
		{"New York 09:00 fall", "America/New_York", "09:00", "2026-10-30T15:00:00Z",
			[]string{"2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z", "2026-11-02T14:00:00Z"}},
		{"New York 02:30 in the gap runs at 03:00 EDT", "America/New_York", "02:30", "2026-03-06T12:00:00Z",
			[]string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		{"New York 02:00 (gap start) runs at the jump", "America/New_York", "02:00", "2026-03-07T12:00:00Z",
			[]string{"2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"}},
		{"New York 01:30 in the overlap runs once, EDT", "America/New_York", "01:30", "2026-10-30T12:00:00Z",
			[]string{"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		{"London 01:30 in the gap", "Europe/London", "01:30", "2026-03-27T12:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		{"London 01:30 in the overlap", "Europe/London", "01:30", "2026-10-24T12:00:00Z",
			[]string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		{"Sydney 02:30 in the October gap", "Australia/Sydney", "02:30", "2026-10-02T00:00:00Z",
			[]string{"2026-10-02T16:30:00Z", "2026-10-03T16:00:00Z", "2026-10-04T15:30:00Z"}},
		{"Sydney 02:30 in the April overlap", "Australia/Sydney", "02:30", "2026-04-03T00:00:00Z",
			[]string{"2026-04-03T15:30:00Z", "2026-04-04T15:30:00Z", "2026-04-05T16:30:00Z"}},
		{"Lord Howe 02:15 in the 30-minute gap", "Australia/Lord_Howe", "02:15", "2026-10-02T00:00:00Z",
			[]string{"2026-10-02T15:45:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"}},
		{"Lord Howe 01:45 in the 30-minute overlap", "Australia/Lord_Howe", "01:45", "2026-04-03T00:00:00Z",
			[]string{"2026-04-03T14:45:00Z", "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := compile(t, Plan{Type: Daily, TimeOfDay: c.at, Timezone: c.zone})
			wantRuns(t, s, c.after, c.want...)
		})
	}
}

// Asking again from inside the overlap's second pass does not run it twice.
func TestOverlapDoesNotRepeat(t *testing.T) {
	s := compile(t, Plan{Type: Daily, TimeOfDay: "01:30", Timezone: "America/New_York"})
	// 01:10 EST, the repeated hour, after the 01:30 EDT run.
	wantRuns(t, s, "2026-11-01T06:10:00Z", "2026-11-02T06:30:00Z")
	// Exactly at the first run.
	wantRuns(t, s, "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z")
}

func TestResolveIsMonotonicThroughChanges(t *testing.T) {
	for _, name := range []string{"America/New_York", "Europe/London", "Australia/Sydney", "Australia/Lord_Howe"} {
		loc := zone(t, name)
		for _, day := range []Date{{2026, 3, 8}, {2026, 3, 29}, {2026, 4, 5}, {2026, 10, 4}, {2026, 10, 25}, {2026, 11, 1}} {
			prev := Resolve(Wall{Date: day}, loc)
			for m := 1; m < 24*60; m++ {
				cur := Resolve(Wall{day, m / 60, m % 60}, loc)
				if cur.Before(prev) {
					t.Fatalf("%s %s: %02d:%02d resolves to %s, before the previous minute's %s", name, day, m/60, m%60, cur, prev)
				}
				prev = cur
			}
		}
	}
}
