package recurrence

import (
	"fmt"
	"iter"
	"time"
)

// Type is the kind of plan: once, daily, weekly, monthly or cron.
type Type string

// The plan types.
const (
	Once    Type = "once"
	Daily   Type = "daily"
	Weekly  Type = "weekly"
	Monthly Type = "monthly"
	Cron    Type = "cron"
)

// Plan is a schedule as the API states it. Field meanings are in doc.go.
type Plan struct {
	Type           Type
	TimeOfDay      string   // "HH:MM", local wall time (daily, weekly, monthly)
	DaysOfWeek     []int    // weekly: 0=Sunday, 1=Monday … 6=Saturday (time.Weekday, cron)
	DayOfMonth     int      // monthly: 1–31; past the month's end means its last day
	CronExpression string   // cron: five fields, minute hour day-of-month month day-of-week
	StartAt        string   // once: RFC 3339 instant, or "YYYY-MM-DDTHH:MM" local wall time
	Timezone       string   // IANA zone name
	StartsOn       string   // optional "YYYY-MM-DD", local date, inclusive
	EndsOn         string   // optional "YYYY-MM-DD", local date, inclusive
	Exclusions     []string // local dates "YYYY-MM-DD" on which it does not run
	PrewarmMinutes int      // minutes a run starts before its occurrence (0: none)
}

// Date is a local calendar date without a zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
	}
	return dateOf(t), nil
}

func dateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

func (d Date) utc() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// AddDays returns the date n days later (earlier for negative n).
func (d Date) AddDays(n int) Date { return dateOf(d.utc().AddDate(0, 0, n)) }

// Before reports whether d is earlier than e.
func (d Date) Before(e Date) bool { return d.utc().Before(e.utc()) }

// Weekday is d's day of the week.
func (d Date) Weekday() time.Weekday { return d.utc().Weekday() }

// daysIn is the number of days in d's month.
func (d Date) daysIn() int {
	return time.Date(d.Year, d.Month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// Wall is a local wall-clock time on a date: what a plan names before the
// DST policy turns it into an instant (see Resolve).
type Wall struct {
	Date
	Hour, Minute int
}

// ICal formats w as an RFC 5545 local DATE-TIME ("20261225T090000"), the
// value of an EXDATE;TZID=… line.
func (w Wall) ICal() string {
	return fmt.Sprintf("%04d%02d%02dT%02d%02d00", w.Year, w.Month, w.Day, w.Hour, w.Minute)
}

func wallOf(t time.Time) Wall {
	return Wall{Date: dateOf(t), Hour: t.Hour(), Minute: t.Minute()}
}

// Schedule is a compiled, structurally valid plan in its zone.
type Schedule struct {
	plan       Plan
	loc        *time.Location
	hour, min  int
	weekdays   [7]bool // indexed by time.Weekday
	cron       *cronSpec
	startAt    time.Time // once
	startsOn   *Date
	endsOn     *Date
	exclusions map[Date]bool
}

// Location is the schedule's zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// Plan is the plan s was compiled from.
func (s *Schedule) Plan() Plan { return s.plan }

// inRange reports whether local date d is within starts_on…ends_on and not excluded.
func (s *Schedule) inRange(d Date) bool {
	if s.startsOn != nil && d.Before(*s.startsOn) {
		return false
	}
	if s.endsOn != nil && s.endsOn.Before(d) {
		return false
	}
	return !s.exclusions[d]
}

// walls yields, in order, the wall times the plan names on date d from
// minute-of-day `from` on, ignoring starts_on, ends_on and exclusions. once
// has none: it is an instant.
func (s *Schedule) walls(d Date, from int) iter.Seq[Wall] {
	return func(yield func(Wall) bool) {
		var fixed bool
		switch s.plan.Type {
		case Daily:
			fixed = true
		case Weekly:
			fixed = s.weekdays[d.Weekday()]
		case Monthly:
			fixed = d.Day == min(s.plan.DayOfMonth, d.daysIn())
		case Cron:
			s.cron.walls(d, from, yield)
			return
		}
		if fixed && s.hour*60+s.min >= from {
			yield(Wall{d, s.hour, s.min})
		}
	}
}
