package recurrence

import (
	"strings"
	"testing"
)

func TestValidateNamesTheField(t *testing.T) {
	now := "2026-12-07T12:00:00Z"
	daily := func(mut func(*Plan)) Plan {
		p := Plan{Type: Daily, TimeOfDay: "09:00", Timezone: "America/New_York"}
		mut(&p)
		return p
	}
	cases := []struct {
		name, field, msg string
		plan             Plan
	}{
		{"unknown zone", "timezone", "Mars/Olympus", daily(func(p *Plan) { p.Timezone = "Mars/Olympus" })},
		{"no zone", "timezone", "required", daily(func(p *Plan) { p.Timezone = "" })},
		{"Local is not a zone", "timezone", "required", daily(func(p *Plan) { p.Timezone = "Local" })},
		{"unknown type", "schedule.type", "hourly", daily(func(p *Plan) { p.Type = "hourly" })},
		{"25:00", "schedule.time_of_day", "25:00", daily(func(p *Plan) { p.TimeOfDay = "25:00" })},
		{"09:60", "schedule.time_of_day", "09:60", daily(func(p *Plan) { p.TimeOfDay = "09:60" })},
		{"9:00", "schedule.time_of_day", "9:00", daily(func(p *Plan) { p.TimeOfDay = "9:00" })},
		{"+1:00", "schedule.time_of_day", "+1:00", daily(func(p *Plan) { p.TimeOfDay = "+1:00" })},
		{"day 0", "schedule.day_of_month", "day 0", daily(func(p *Plan) { p.Type, p.DayOfMonth = Monthly, 0 })},
		{"day 32", "schedule.day_of_month", "day 32", daily(func(p *Plan) { p.Type, p.DayOfMonth = Monthly, 32 })},
		{"weekday 7", "schedule.days_of_week", "weekday 7", daily(func(p *Plan) { p.Type, p.DaysOfWeek = Weekly, []int{1, 7} })},
		{"weekday -1", "schedule.days_of_week", "weekday -1", daily(func(p *Plan) { p.Type, p.DaysOfWeek = Weekly, []int{-1} })},
		{"no weekdays", "schedule.days_of_week", "at least one", daily(func(p *Plan) { p.Type = Weekly })},
		{"cron does not parse", "schedule.cron_expression", "minute field", daily(func(p *Plan) { p.Type, p.CronExpression = Cron, "61 * * * *" })},
		{"cron never fires", "schedule.cron_expression", "never fires", daily(func(p *Plan) { p.Type, p.CronExpression = Cron, "0 0 30 2 *" })},
		{"cron 31 in 30-day months only", "schedule.cron_expression", "never fires", daily(func(p *Plan) { p.Type, p.CronExpression = Cron, "0 0 31 4,6,9,11 *" })},
		{"once in the past", "schedule.start_at", "not in the future", daily(func(p *Plan) { p.Type, p.StartAt = Once, "2026-12-07T06:59" })},
		{"once now", "schedule.start_at", "not in the future", daily(func(p *Plan) { p.Type, p.StartAt = Once, now })},
		{"once unparsable", "schedule.start_at", "not a time", daily(func(p *Plan) { p.Type, p.StartAt = Once, "tomorrow" })},
		{"bad starts_on", "starts_on", "not a date", daily(func(p *Plan) { p.StartsOn = "2026-13-01" })},
		{"ends before it starts", "ends_on", "before starts_on", daily(func(p *Plan) { p.StartsOn, p.EndsOn = "2027-01-02", "2027-01-01" })},
		{"ended", "ends_on", "no occurrence", daily(func(p *Plan) { p.EndsOn = "2026-12-06" })},
		{"bad exclusion", "exclusions[1]", "not a date", daily(func(p *Plan) { p.Exclusions = []string{"2026-12-25", "12/26/2026"} })},
		{"negative pre-warm", "pre_warm_minutes", "negative", daily(func(p *Plan) { p.PrewarmMinutes = -1 })},
		// The March 2027 spring-forward day makes the shortest New York gap 23 h.
		{"pre-warm of a whole short day", "pre_warm_minutes", "23h0m0s", daily(func(p *Plan) { p.PrewarmMinutes = 23 * 60 })},
		{"pre-warm longer than the cron gap", "pre_warm_minutes", "15m0s", daily(func(p *Plan) { p.Type, p.CronExpression, p.PrewarmMinutes = Cron, "*/15 9-17 * * 1-5", 20 })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs := Validate(c.plan, utc(t, now))
			if len(errs) == 0 {
				t.Fatalf("%+v: valid, want an error on %s", c.plan, c.field)
			}
			if errs[0].Field != c.field || !strings.Contains(errs[0].Message, c.msg) {
				t.Fatalf("got %v, want %s: …%s…", errs, c.field, c.msg)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	now := utc(t, "2026-12-07T12:00:00Z")
	for _, p := range []Plan{
		{Type: Daily, TimeOfDay: "09:00", Timezone: "America/New_York"},
		{Type: Daily, TimeOfDay: "23:59", Timezone: "America/New_York", PrewarmMinutes: 23*60 - 1},
		{Type: Weekly, DaysOfWeek: []int{1, 3, 5}, TimeOfDay: "14:00", Timezone: "UTC", PrewarmMinutes: 5},
		{Type: Monthly, DayOfMonth: 31, TimeOfDay: "00:00", Timezone: "Australia/Lord_Howe"},
		{Type: Cron, CronExpression: "0 0 29 2 *", Timezone: "UTC"},
		{Type: Cron, CronExpression: "*/15 9-17 * * 1-5", Timezone: "UTC", PrewarmMinutes: 14},
		{Type: Once, StartAt: "2026-12-07T12:01:00Z", Timezone: "UTC"},
	} {
		if s, errs := Validate(p, now); errs != nil || s == nil {
			t.Errorf("%+v: %v", p, errs)
		}
	}
}
