package recurrence

import (
	"fmt"
	"strconv"
	"strings"
)

// cronSpec is a parsed five-field cron expression (see doc.go).
type cronSpec struct {
	minute, hour, dom, month, dow []bool
	domStar, dowStar              bool // the field starts with '*' (cronie's rule for combining them)
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is the value min+i
}

var (
	monthNames = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	dayNames   = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}
	cronFields = []cronField{
		{"minute", 0, 59, nil},
		{"hour", 0, 23, nil},
		{"day of month", 1, 31, nil},
		{"month", 1, 12, monthNames},
		{"day of week", 0, 7, dayNames},
	}
)

// parseCron reads "minute hour day-of-month month day-of-week".
func parseCron(expr string) (*cronSpec, error) {
	parts := strings.Fields(expr)
	if len(parts) != 5 {
		return nil, fmt.Errorf("needs 5 fields (minute hour day-of-month month day-of-week), got %d", len(parts))
	}
	sets := make([][]bool, 5)
	for i, f := range cronFields {
		set, err := f.parse(parts[i])
		if err != nil {
			return nil, fmt.Errorf("%s field %q: %v", f.name, parts[i], err)
		}
		sets[i] = set
	}
	dow := sets[4]
	if dow[7] {
		dow[0] = true // 7 is Sunday too
	}
	return &cronSpec{
		minute: sets[0], hour: sets[1], dom: sets[2], month: sets[3], dow: dow[:7],
		domStar: strings.HasPrefix(parts[2], "*"), dowStar: strings.HasPrefix(parts[4], "*"),
	}, nil
}

// parse reads a comma list of "*", "n", "a-b", each optionally "/step".
func (f cronField) parse(s string) ([]bool, error) {
	set := make([]bool, f.max+1)
	for _, item := range strings.Split(s, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("step %q is not a positive number", stepText)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return nil, err
			}
			if hi, err = f.value(b); err != nil {
				return nil, err
			}
			if lo > hi {
				return nil, fmt.Errorf("range %s is backwards", rng)
			}
		default:
			v, err := f.value(rng)
			if err != nil {
				return nil, err
			}
			lo = v
			if !hasStep {
				hi = v // "a/n" means a-max/n
			}
		}
		for v := lo; v <= hi; v += step {
			set[v] = true
		}
	}
	return set, nil
}

func (f cronField) value(s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number or a name", s)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d is outside %d-%d", v, f.min, f.max)
	}
	return v, nil
}

// matchesDate applies cronie's rule: when both day fields are restricted (do
// not start with '*') a day matching either runs; otherwise both must match.
func (c *cronSpec) matchesDate(d Date) bool {
	if !c.month[d.Month] {
		return false
	}
	dom, dow := c.dom[d.Day], c.dow[d.Weekday()]
	if !c.domStar && !c.dowStar {
		return dom || dow
	}
	return dom && dow
}

// walls yields the wall times the expression names on d from minute-of-day
// `from` on, in order, until yield returns false.
func (c *cronSpec) walls(d Date, from int, yield func(Wall) bool) {
	if !c.matchesDate(d) {
		return
	}
	for h := from / 60; h < 24; h++ {
		if !c.hour[h] {
			continue
		}
		m := 0
		if h == from/60 {
			m = from % 60
		}
		for ; m < 60; m++ {
			if c.minute[m] && !yield(Wall{d, h, m}) {
				return
			}
		}
	}
}

// firesEver reports whether some (month, day) the expression allows exists in
// some year (Feb 29 counts: it exists in leap years).
func (c *cronSpec) firesEver() bool {
	if !c.domStar && !c.dowStar {
		return true // any allowed weekday comes round in any allowed month
	}
	days := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if !c.month[m] {
			continue
		}
		for d := 1; d <= days[m]; d++ {
			if c.dom[d] {
				return true // weekdays: every date falls on each weekday in some year
			}
		}
	}
	return false
}
