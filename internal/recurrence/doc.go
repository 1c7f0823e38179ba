// Package recurrence is the calendar math of session scheduling: a Plan (the
// API's schedule) is validated, compiled in its zone, and answers its
// occurrences as UTC instants, its pre-warm start, and its RFC 5545 RRULE and
// EXDATEs. It is pure: no I/O and no clock reads; every function that needs
// "now" takes it. (LoadZone reads the zone database through time.LoadLocation;
// Compile takes a *time.Location.)
//
// # Plans
//
//   - once: start_at, an RFC 3339 instant, or "YYYY-MM-DDTHH:MM" in the zone
//     (then resolved by the DST policy below). It must be in the future.
//   - daily: every day at time_of_day ("HH:MM", 00:00–23:59, local).
//   - weekly: on days_of_week at time_of_day. Days are numbered as in cron,
//     Go's time.Weekday and Temporal's calendars: 0=Sunday, 1=Monday …
//     6=Saturday, so the seed's [1, 3, 5] is Monday, Wednesday, Friday.
//     Anything else (7, -1) is an error: 7 would be Sunday to some and an
//     error to others, so it is refused rather than guessed.
//   - monthly: on day_of_month (1–31) at time_of_day. In a month without
//     that day it runs on the month's last day: 31 runs on 30 April, and
//     29, 30 and 31 run on 28 February (29 February in leap years). A
//     monthly schedule runs every month; skipping short months would leave
//     "monthly on the 31st" silent five months a year.
//   - cron: five fields, minute (0–59) hour (0–23) day-of-month (1–31)
//     month (1–12 or JAN–DEC) day-of-week (0–7 or SUN–SAT; 0 and 7 are
//     Sunday), each a comma list of "*", "n", "a-b", with "/step" ("*/15",
//     "1-5/2", "10/20" = 10-59/20). Names are case-insensitive. No seconds,
//     no @daily shorthands. Day fields combine like cronie (crontab(5)): when
//     both are restricted (neither starts with '*') a day matching either runs
//     ("0 9 1 * MON" = the 1st and every Monday); otherwise both must match
//     ("0 9 */2 * MON" = Mondays on odd dates). An expression naming no date
//     that exists ("0 0 30 2 *") never fires and is refused; 29 February is a
//     date (leap years).
//
// starts_on and ends_on (optional, inclusive) and exclusions are local dates
// in the zone. An occurrence belongs to the date its plan names (a daily
// 02:30 moved to 03:00 by a gap is still that date's run).
//
// # DST policy (like cronie)
//
// Plans name local wall times; Resolve turns each into one instant:
//
//   - A wall time inside a spring-forward gap runs once, at the moment of the
//     jump: a daily 02:30 in America/New_York on 2026-03-08 runs at 03:00 EDT
//     (07:00 UTC), not at the 03:30 that normalising the missing time gives.
//   - A wall time inside a fall-back overlap runs once, at its first
//     occurrence: 01:30 on 2026-11-01 in New York is 01:30 EDT (05:30 UTC).
//   - The next day the plan's wall time holds again: the shift never carries.
//
// Cron expressions follow the same rule for every wall time they name, so
// each named wall-clock minute fires at most once. For "*/15 * * * *" in New
// York: on the spring-forward day 02:00–02:45 do not exist and all resolve to
// the jump, 03:00 EDT, which also is 03:00's own run, so it fires once there
// (01:45 EST, 03:00 EDT, 03:15 EDT: the missing minutes are skipped); on the
// fall-back day 01:00–01:45 fire in their first (EDT) pass and not again in
// the repeated hour (01:45 EDT, then 02:00 EST: an hour of real time with no
// run). Zones with 30-minute shifts (Australia/Lord_Howe) follow the same
// rule.
//
// Pre-warm is plain instant arithmetic (PrewarmStart): a run starts `minutes`
// before its occurrence's instant, across midnight, month ends and DST changes.
// Validate refuses a pre-warm that is not shorter than the shortest gap
// between consecutive occurrences in the next 366 days (MinGap): at equal,
// the next run would start as the previous one does.
package recurrence
