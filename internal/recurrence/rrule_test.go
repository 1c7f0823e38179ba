package recurrence

import (
	"reflect"
	"testing"
)

func TestRRule(t *testing.T) {
	cases := []struct {
		plan Plan
		want string // "" when RRULE cannot say it
	}{
		{Plan{Type: Daily, TimeOfDay: "09:00", Timezone: "America/New_York"}, "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0"},
		{Plan{Type: Weekly, DaysOfWeek: []int{5, 1, 3}, TimeOfDay: "14:05", Timezone: "UTC"}, "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=14;BYMINUTE=5;BYSECOND=0"},
		{Plan{Type: Weekly, DaysOfWeek: []int{0, 6}, TimeOfDay: "10:00", Timezone: "UTC"}, "FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=10;BYMINUTE=0;BYSECOND=0"},
		{Plan{Type: Monthly, DayOfMonth: 15, TimeOfDay: "10:00", Timezone: "UTC"}, "FREQ=MONTHLY;BYMONTHDAY=15;BYHOUR=10;BYMINUTE=0;BYSECOND=0"},
		{Plan{Type: Monthly, DayOfMonth: 31, TimeOfDay: "10:00", Timezone: "UTC"}, "FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=10;BYMINUTE=0;BYSECOND=0"},
		{Plan{Type: Monthly, DayOfMonth: 30, TimeOfDay: "10:00", Timezone: "UTC"}, "FREQ=MONTHLY;BYMONTHDAY=28,29,30;BYSETPOS=-1;BYHOUR=10;BYMINUTE=0;BYSECOND=0"},
		{Plan{Type: Monthly, DayOfMonth: 29, TimeOfDay: "10:00", Timezone: "UTC"}, "FREQ=MONTHLY;BYMONTHDAY=28,29;BYSETPOS=-1;BYHOUR=10;BYMINUTE=0;BYSECOND=0"},
		// ends_on 2026-12-31 in New York ends at 05:00 UTC on 1 January.
		{Plan{Type: Daily, TimeOfDay: "09:00", Timezone: "America/New_York", EndsOn: "2026-12-31"}, "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0;UNTIL=20270101T045959Z"},
		{Plan{Type: Daily, TimeOfDay: "09:00", Timezone: "Australia/Sydney", EndsOn: "2026-12-31"}, "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0;UNTIL=20261231T125959Z"},
		{Plan{Type: Cron, CronExpression: "*/30 9-10 * * MON-FRI", Timezone: "UTC"}, "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,10;BYMINUTE=0,30;BYSECOND=0"},
		{Plan{Type: Cron, CronExpression: "0 9 1,15 JAN-MAR *", Timezone: "UTC"}, "FREQ=DAILY;BYMONTH=1,2,3;BYMONTHDAY=1,15;BYHOUR=9;BYMINUTE=0;BYSECOND=0"},
		{Plan{Type: Cron, CronExpression: "0 9 * * 0-7", Timezone: "UTC"}, "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0"},
		{Plan{Type: Cron, CronExpression: "0 9 1 * MON", Timezone: "UTC"}, ""}, // cron ORs, RRULE ANDs
		{Plan{Type: Once, StartAt: "2027-01-01T09:00:00Z", Timezone: "UTC"}, ""},
	}
	for _, c := range cases {
		got, ok := compile(t, c.plan).RRule()
		if ok != (c.want != "") || got != c.want {
			t.Errorf("%+v: RRule %q (ok %v), want %q", c.plan, got, ok, c.want)
		}
	}
}

func TestExDates(t *testing.T) {
	s := compile(t, Plan{Type: Weekly, DaysOfWeek: []int{1, 3, 5}, TimeOfDay: "14:00", Timezone: "Europe/London",
		EndsOn: "2027-06-30", Exclusions: []string{"2027-01-01", "2026-12-25", "2026-12-26", "2027-07-02"}})
	// 26 December 2026 is a Saturday (no run); 2 July 2027 is after ends_on.
	var got []string
	for _, w := range s.ExDates() {
		got = append(got, w.ICal())
	}
	if want := []string{"20261225T140000", "20270101T140000"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ExDates %v, want %v", got, want)
	}
	c := compile(t, Plan{Type: Cron, CronExpression: "0 9,17 * * *", Timezone: "UTC", Exclusions: []string{"2026-12-25"}})
	got = nil
	for _, w := range c.ExDates() {
		got = append(got, w.ICal())
	}
	if want := []string{"20261225T090000", "20261225T170000"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("cron ExDates %v, want %v", got, want)
	}
}

func TestGapShifts(t *testing.T) {
	s := compile(t, Plan{Type: Daily, TimeOfDay: "02:30", Timezone: "America/New_York"})
	got := s.GapShifts(utc(t, "2026-01-01T00:00:00Z"), utc(t, "2027-01-01T00:00:00Z"))
	// Only the spring-forward day; the fall-back 02:30 exists once.
	if len(got) != 1 || got[0].Wall.ICal() != "20260308T023000" || !got[0].At.Equal(utc(t, "2026-03-08T07:00:00Z")) {
		t.Fatalf("GapShifts %+v", got)
	}
	if got := compile(t, Plan{Type: Daily, TimeOfDay: "09:00", Timezone: "America/New_York"}).
		GapShifts(utc(t, "2026-01-01T00:00:00Z"), utc(t, "2027-01-01T00:00:00Z")); len(got) != 0 {
		t.Fatalf("09:00 never shifts, got %+v", got)
	}
}
