package recurrence

import (
	"testing"
	"time"
)

func TestWeekly(t *testing.T) {
	// The seed's example: [1, 3, 5] at 14:00 UTC is Monday, Wednesday, Friday.
	s := compile(t, Plan{Type: Weekly, DaysOfWeek: []int{1, 3, 5}, TimeOfDay: "14:00", Timezone: "UTC"})
	wantRuns(t, s, "2026-12-07T14:00:00Z", // Monday's run itself is not "after"
		"2026-12-09T14:00:00Z", "2026-12-11T14:00:00Z", "2026-12-14T14:00:00Z")
	// 0 is Sunday (a day named twice runs once).
	for _, days := range [][]int{{0}, {0, 0}} {
		s := compile(t, Plan{Type: Weekly, DaysOfWeek: days, TimeOfDay: "10:00", Timezone: "Europe/London"})
		wantRuns(t, s, "2026-12-07T00:00:00Z", "2026-12-13T10:00:00Z", "2026-12-20T10:00:00Z")
	}
}

func TestMonthlyMonthEnds(t *testing.T) {
	cases := []struct {
		day   int
		after string
		want  []string
	}{
		{31, "2026-01-01T00:00:00Z", []string{"2026-01-31T09:00:00Z", "2026-02-28T09:00:00Z", "2026-03-31T09:00:00Z",
			"2026-04-30T09:00:00Z", "2026-05-31T09:00:00Z"}},
		{31, "2028-01-31T10:00:00Z", []string{"2028-02-29T09:00:00Z", "2028-03-31T09:00:00Z"}}, // leap year
		{30, "2027-01-31T00:00:00Z", []string{"2027-02-28T09:00:00Z", "2027-03-30T09:00:00Z"}},
		{29, "2027-01-31T00:00:00Z", []string{"2027-02-28T09:00:00Z", "2027-03-29T09:00:00Z"}},
		{29, "2028-01-31T00:00:00Z", []string{"2028-02-29T09:00:00Z", "2028-03-29T09:00:00Z"}},
		{28, "2028-01-31T00:00:00Z", []string{"2028-02-28T09:00:00Z", "2028-03-28T09:00:00Z"}},
		{1, "2026-12-15T00:00:00Z", []string{"2027-01-01T09:00:00Z", "2027-02-01T09:00:00Z"}},
	}
	for _, c := range cases {
		s := compile(t, Plan{Type: Monthly, DayOfMonth: c.day, TimeOfDay: "09:00", Timezone: "UTC"})
		wantRuns(t, s, c.after, c.want...)
	}
}

func TestDateBoundsAndExclusions(t *testing.T) {
	s := compile(t, Plan{Type: Daily, TimeOfDay: "09:00", Timezone: "America/New_York",
		StartsOn: "2026-12-24", EndsOn: "2026-12-28", Exclusions: []string{"2026-12-25", "2027-01-01"}})
	wantRuns(t, s, "2026-12-01T00:00:00Z",
		"2026-12-24T14:00:00Z", "2026-12-26T14:00:00Z", "2026-12-27T14:00:00Z", "2026-12-28T14:00:00Z")
	if got := s.NextN(utc(t, "2026-12-01T00:00:00Z"), 10); len(got) != 4 {
		t.Fatalf("ends_on 2026-12-28 should leave 4 runs, got %v", got)
	}
	// ends_on is a local date: 23:30 New York on the 28th is 04:30 UTC on the 29th.
	late := compile(t, Plan{Type: Daily, TimeOfDay: "23:30", Timezone: "America/New_York", EndsOn: "2026-12-28"})
	wantRuns(t, late, "2026-12-27T12:00:00Z", "2026-12-28T04:30:00Z", "2026-12-29T04:30:00Z")
	if _, ok := late.Next(utc(t, "2026-12-29T04:30:00Z")); ok {
		t.Fatal("a run after ends_on")
	}
}

func TestOnce(t *testing.T) {
	// A local start_at inside the gap runs at the jump, like any wall time.
	s := compile(t, Plan{Type: Once, StartAt: "2026-03-08T02:30", Timezone: "America/New_York"})
	wantRuns(t, s, "2026-03-01T00:00:00Z", "2026-03-08T07:00:00Z")
	if _, ok := s.Next(utc(t, "2026-03-08T07:00:00Z")); ok {
		t.Fatal("once ran twice")
	}
	// An RFC 3339 start_at is an instant, whatever the zone.
	s = compile(t, Plan{Type: Once, StartAt: "2026-12-24T09:00:00+01:00", Timezone: "Asia/Tokyo"})
	wantRuns(t, s, "2026-12-01T00:00:00Z", "2026-12-24T08:00:00Z")
	// An excluded date cancels it.
	s = compile(t, Plan{Type: Once, StartAt: "2026-12-25T09:00", Timezone: "UTC", Exclusions: []string{"2026-12-25"}})
	if _, ok := s.Next(utc(t, "2026-12-01T00:00:00Z")); ok {
		t.Fatal("once ran on an excluded date")
	}
}

func TestPrewarmStart(t *testing.T) {
	cases := []struct {
		name      string
		plan      Plan
		after     string
		minutes   int
		wantLocal string // the pre-warm start in the plan's zone
	}{
		{"Monday 00:02 starts Sunday 23:57", Plan{Type: Weekly, DaysOfWeek: []int{1}, TimeOfDay: "00:02", Timezone: "Europe/London"},
			"2026-12-01T00:00:00Z", 5, "2026-12-06T23:57:00Z"},
		{"the 1st at 00:02 starts on the month's last day", Plan{Type: Monthly, DayOfMonth: 1, TimeOfDay: "00:02", Timezone: "America/New_York"},
			"2026-11-15T00:00:00Z", 5, "2026-11-30T23:57:00-05:00"},
		{"across the year end", Plan{Type: Daily, TimeOfDay: "00:02", Timezone: "Australia/Sydney"},
			"2026-12-31T12:00:00Z", 5, "2026-12-31T23:57:00+11:00"},
		// 03:00 EDT on the spring-forward day; two hours earlier as an instant
		// is 00:00 EST, three hours of wall clock.
		{"across spring forward", Plan{Type: Daily, TimeOfDay: "03:00", Timezone: "America/New_York"},
			"2026-03-08T00:00:00Z", 120, "2026-03-08T00:00:00-05:00"},
		// 02:00 EST the fall-back day is 07:00 UTC; 90 minutes earlier is
		// 01:30 EDT, the first pass.
		{"across fall back", Plan{Type: Daily, TimeOfDay: "02:00", Timezone: "America/New_York"},
			"2026-11-01T00:00:00Z", 90, "2026-11-01T01:30:00-04:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := compile(t, c.plan)
			occ, ok := s.Next(utc(t, c.after))
			if !ok {
				t.Fatal("no occurrence")
			}
			got := PrewarmStart(occ, c.minutes)
			if want := utc(t, c.wantLocal); !got.Equal(want) || occ.Sub(got) != time.Duration(c.minutes)*time.Minute {
				t.Fatalf("pre-warm of %s: got %s (%s local), want %s", occ, got, got.In(s.Location()), c.wantLocal)
			}
		})
	}
}

func TestMinGap(t *testing.T) {
	cases := []struct {
		plan Plan
		want time.Duration
	}{
		{Plan{Type: Daily, TimeOfDay: "09:00", Timezone: "UTC"}, 24 * time.Hour},
		// The spring-forward day in March 2027 is 23 hours long.
		{Plan{Type: Daily, TimeOfDay: "09:00", Timezone: "America/New_York"}, 23 * time.Hour},
		// Lord Howe's spring day is 23.5 hours long.
		{Plan{Type: Daily, TimeOfDay: "09:00", Timezone: "Australia/Lord_Howe"}, 23*time.Hour + 30*time.Minute},
		// A 02:30 that the gap moves to 03:00 EDT, then 02:30 EDT next day: 23.5 h.
		{Plan{Type: Daily, TimeOfDay: "02:30", Timezone: "America/New_York"}, 23*time.Hour + 30*time.Minute},
		{Plan{Type: Weekly, DaysOfWeek: []int{1, 3, 5}, TimeOfDay: "14:00", Timezone: "UTC"}, 48 * time.Hour},
		{Plan{Type: Monthly, DayOfMonth: 31, TimeOfDay: "14:00", Timezone: "UTC"}, 28 * 24 * time.Hour},
		{Plan{Type: Cron, CronExpression: "*/15 8-17 * * MON-FRI", Timezone: "Europe/London"}, 15 * time.Minute},
	}
	for _, c := range cases {
		got, ok := compile(t, c.plan).MinGap(utc(t, "2026-12-01T00:00:00Z"), GapHorizon)
		if !ok || got != c.want {
			t.Errorf("%+v: MinGap %s (ok %v), want %s", c.plan, got, ok, c.want)
		}
	}
	if _, ok := compile(t, Plan{Type: Once, StartAt: "2027-01-01T00:00:00Z", Timezone: "UTC"}).MinGap(utc(t, "2026-12-01T00:00:00Z"), GapHorizon); ok {
		t.Error("once has no gap")
	}
}
