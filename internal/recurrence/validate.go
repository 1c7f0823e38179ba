package recurrence

import (
	"fmt"
	"strings"
	"time"
)

// FieldError is a bad input, named by its API field ("schedule.time_of_day").
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Errors is every FieldError of a plan; nil when it is valid.
type Errors []FieldError

func (e Errors) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "; ")
}

// GapHorizon is how far ahead Validate looks for the shortest gap between runs.
const GapHorizon = 366 * 24 * time.Hour

// LoadZone loads an IANA zone by name. "" and "Local" are refused: the first
// silently means UTC and the second the host's zone.
func LoadZone(name string) (*time.Location, *FieldError) {
	if name == "" || name == "Local" {
		return nil, &FieldError{"timezone", "an IANA time zone name is required (e.g. America/New_York or UTC)"}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &FieldError{"timezone", fmt.Sprintf("unknown time zone %q (use an IANA name such as Europe/London)", name)}
	}
	return loc, nil
}

// Validate checks p against now: everything Compile checks, plus that the
// zone exists, a once plan is in the future, the plan occurs at all after now,
// and the pre-warm is shorter than the shortest gap between consecutive runs
// in the next GapHorizon. It returns the compiled schedule when valid.
func Validate(p Plan, now time.Time) (*Schedule, Errors) {
	loc, fe := LoadZone(p.Timezone)
	if fe != nil {
		return nil, Errors{*fe}
	}
	s, errs := Compile(p, loc)
	if errs != nil {
		return nil, errs
	}
	if p.Type == Once && !s.startAt.After(now) {
		return nil, Errors{{"schedule.start_at", fmt.Sprintf("%s is not in the future", s.startAt.Format(time.RFC3339))}}
	}
	if p.Type == Cron {
		unbounded := *s
		unbounded.startsOn, unbounded.endsOn, unbounded.exclusions = nil, nil, nil
		if _, ok := unbounded.Next(now); !ok {
			return nil, Errors{{"schedule.cron_expression", "never fires (no such date, e.g. February 30)"}}
		}
	}
	if _, ok := s.Next(now); !ok {
		return nil, Errors{{"ends_on", "the schedule has no occurrence after now (check ends_on and exclusions)"}}
	}
	if p.PrewarmMinutes > 0 {
		if gap, ok := s.MinGap(now, GapHorizon); ok && time.Duration(p.PrewarmMinutes)*time.Minute >= gap {
			return nil, Errors{{"pre_warm_minutes", fmt.Sprintf("%d minutes is not shorter than the shortest gap between two runs (%s)", p.PrewarmMinutes, gap)}}
		}
	}
	return s, nil
}

// Compile checks p's structure (no clock: nothing here depends on now) and
// builds the schedule in loc.
func Compile(p Plan, loc *time.Location) (*Schedule, Errors) {
	s := &Schedule{plan: p, loc: loc}
	var errs Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	if loc == nil {
		add("timezone", "a time zone is required")
		return nil, errs
	}
	if p.PrewarmMinutes < 0 {
		add("pre_warm_minutes", "must not be negative")
	}
	switch p.Type {
	case Daily, Weekly, Monthly:
		h, m, err := parseTimeOfDay(p.TimeOfDay)
		if err != nil {
			add("schedule.time_of_day", "%v", err)
		}
		s.hour, s.min = h, m
	case Once, Cron:
	default:
		add("schedule.type", "%q is not one of once, daily, weekly, monthly, cron", p.Type)
	}
	switch p.Type {
	case Weekly:
		if len(p.DaysOfWeek) == 0 {
			add("schedule.days_of_week", "at least one day is required (0=Sunday, 1=Monday … 6=Saturday)")
		}
		for _, d := range p.DaysOfWeek {
			if d < 0 || d > 6 {
				add("schedule.days_of_week", "weekday %d is out of range: use 0 (Sunday), 1 (Monday) … 6 (Saturday)", d)
				continue
			}
			s.weekdays[time.Weekday(d)] = true
		}
	case Monthly:
		if p.DayOfMonth < 1 || p.DayOfMonth > 31 {
			add("schedule.day_of_month", "day %d is out of range: use 1 to 31 (29–31 mean the last day in shorter months)", p.DayOfMonth)
		}
	case Cron:
		c, err := parseCron(p.CronExpression)
		if err != nil {
			add("schedule.cron_expression", "%v", err)
		} else if !c.firesEver() {
			add("schedule.cron_expression", "never fires (no such date, e.g. February 30)")
		}
		s.cron = c
	case Once:
		t, err := parseStartAt(p.StartAt, loc)
		if err != nil {
			add("schedule.start_at", "%v", err)
		}
		s.startAt = t
	}
	s.startsOn = optionalDate(p.StartsOn, "starts_on", add)
	s.endsOn = optionalDate(p.EndsOn, "ends_on", add)
	if s.startsOn != nil && s.endsOn != nil && s.endsOn.Before(*s.startsOn) {
		add("ends_on", "%s is before starts_on %s", s.endsOn, s.startsOn)
	}
	s.exclusions = map[Date]bool{}
	for i, x := range p.Exclusions {
		d, err := ParseDate(x)
		if err != nil {
			add(fmt.Sprintf("exclusions[%d]", i), "%v", err)
			continue
		}
		s.exclusions[d] = true
	}
	if errs != nil {
		return nil, errs
	}
	return s, nil
}

func optionalDate(s, field string, add func(string, string, ...any)) *Date {
	if s == "" {
		return nil
	}
	d, err := ParseDate(s)
	if err != nil {
		add(field, "%v", err)
		return nil
	}
	return &d
}

func parseTimeOfDay(s string) (int, int, error) {
	bad := fmt.Errorf("%q is not a time of day (HH:MM, 00:00 to 23:59)", s)
	if len(s) != 5 || s[2] != ':' {
		return 0, 0, bad
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, 0, bad
		}
	}
	h, m := int(s[0]-'0')*10+int(s[1]-'0'), int(s[3]-'0')*10+int(s[4]-'0')
	if h > 23 || m > 59 {
		return 0, 0, bad
	}
	return h, m, nil
}

// parseStartAt reads an RFC 3339 instant, or a local "YYYY-MM-DDTHH:MM" wall
// time in loc resolved by the DST policy.
func parseStartAt(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02T15:04", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339, or YYYY-MM-DDTHH:MM in the schedule's zone)", s)
	}
	return Resolve(wallOf(t), loc), nil
}
