package recurrence

import "testing"

func TestCronNext(t *testing.T) {
	cases := []struct {
		name, expr, zone, after string
		want                    []string
	}{
		{"weekday mornings, names", "55 8 * * mon-FRI", "UTC", "2026-12-04T09:00:00Z", // a Friday
			[]string{"2026-12-07T08:55:00Z", "2026-12-08T08:55:00Z"}},
		{"lists and steps", "0,30 9-17/4 * * *", "UTC", "2026-12-07T09:10:00Z",
			[]string{"2026-12-07T09:30:00Z", "2026-12-07T13:00:00Z", "2026-12-07T13:30:00Z", "2026-12-07T17:00:00Z", "2026-12-07T17:30:00Z", "2026-12-08T09:00:00Z"}},
		{"a/n is a-max/n", "10/20 0 * * *", "UTC", "2026-12-07T00:00:00Z",
			[]string{"2026-12-07T00:10:00Z", "2026-12-07T00:30:00Z", "2026-12-07T00:50:00Z", "2026-12-08T00:10:00Z"}},
		{"month names, quarter starts", "0 9 1 JAN,apr,JUL,OCT *", "UTC", "2026-12-01T00:00:00Z",
			[]string{"2027-01-01T09:00:00Z", "2027-04-01T09:00:00Z"}},
		{"both day fields restricted: OR", "0 9 1 * MON", "UTC", "2026-12-01T10:00:00Z", // Tuesday the 1st
			[]string{"2026-12-07T09:00:00Z", "2026-12-14T09:00:00Z", "2026-12-21T09:00:00Z", "2026-12-28T09:00:00Z", "2027-01-01T09:00:00Z", "2027-01-04T09:00:00Z"}},
		{"day of month starting with *: AND", "0 9 */2 * MON", "UTC", "2026-12-01T00:00:00Z", // odd dates that are Mondays
			[]string{"2026-12-07T09:00:00Z", "2026-12-21T09:00:00Z", "2027-01-11T09:00:00Z"}},
		{"7 is Sunday", "0 12 * * 7", "UTC", "2026-12-07T00:00:00Z", []string{"2026-12-13T12:00:00Z"}},
		{"February 29 waits for a leap year", "0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		// The DST policy, per named wall-clock minute.
		{"*/15 across the gap: missing minutes are skipped", "*/15 * * * *", "America/New_York", "2026-03-08T06:40:00Z",
			[]string{"2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z"}},
		{"*/15 across the overlap: repeated minutes fire once", "*/15 * * * *", "America/New_York", "2026-11-01T05:40:00Z",
			[]string{"2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z", "2026-11-01T07:15:00Z"}},
		{"fixed time in the gap runs at the jump", "30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z",
			[]string{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		{"gap times collapsing onto the jump run once", "0,30 2,3 * * *", "America/New_York", "2026-03-08T06:00:00Z",
			[]string{"2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:00:00Z"}},
		{"fixed time in the overlap runs once", "30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z",
			[]string{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		{"Lord Howe hourly at :45 across its 30-minute gap", "45 * * * *", "Australia/Lord_Howe", "2026-10-03T15:00:00Z",
			// 01:45 +10:30, 02:45 +11 (02:00–02:29 missing, 02:45 exists), 03:45.
			[]string{"2026-10-03T15:15:00Z", "2026-10-03T15:45:00Z", "2026-10-03T16:45:00Z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := compile(t, Plan{Type: Cron, CronExpression: c.expr, Timezone: c.zone})
			wantRuns(t, s, c.after, c.want...)
		})
	}
}

func TestCronParseErrors(t *testing.T) {
	for _, expr := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
		"* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "x * * * *", "* * * FOO *", "@daily",
	} {
		if _, err := parseCron(expr); err == nil {
			t.Errorf("%q parsed", expr)
		}
	}
}
