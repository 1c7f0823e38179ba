// Package breaker is the circuit breaker of a delivery target's retry loop:
// after Threshold failed attempts in a row the circuit opens, and the loop
// then makes one attempt (a probe) per probe interval instead of trying
// every waiting delivery; the interval doubles with each failed probe up to
// MaxProbe, and the first success closes the circuit. A dead endpoint so
// costs one request per interval, however many deliveries wait for it.
//
// The package has no clock and no I/O: the loop passes the time (in a
// workflow, workflow.Now) and the outcomes of each round of attempts.
package breaker

import "time"

// Defaults of Config.
const (
	DefaultThreshold  = 5
	DefaultFirstProbe = 30 * time.Second
	DefaultMaxProbe   = 10 * time.Minute
)

// Config tunes a breaker; zero fields take the defaults.
type Config struct {
	Threshold  int           // failed attempts in a row that open the circuit
	FirstProbe time.Duration // wait after opening before the first probe
	MaxProbe   time.Duration // the longest wait between probes
}

func (c Config) threshold() int {
	if c.Threshold <= 0 {
		return DefaultThreshold
	}
	return c.Threshold
}

func (c Config) firstProbe() time.Duration {
	if c.FirstProbe <= 0 {
		return DefaultFirstProbe
	}
	return c.FirstProbe
}

func (c Config) maxProbe() time.Duration {
	if c.MaxProbe <= 0 {
		return DefaultMaxProbe
	}
	return max(c.MaxProbe, c.firstProbe())
}

// State is a circuit's state; its zero value is a closed circuit with no
// failure. It is plain data, so a loop can carry it across continue-as-new.
type State struct {
	Open      bool
	Failures  int       // failed attempts in a row (closed), or failed probes (open)
	OpenedAt  time.Time // when it opened (zero when closed)
	NextProbe time.Time // open: the earliest time of the next probe
}

// Round is the outcome of one round of attempts.
type Round struct {
	Succeeded int // attempts the receiver accepted
	Failed    int // attempts that failed (and count against the target)
}

// Allow answers how many attempts the loop may make at now, given it would
// make up to batch: batch when closed, 1 when open and the probe is due, 0
// when open and it is not (wait until NextProbe).
func (s State) Allow(now time.Time, batch int) int {
	switch {
	case !s.Open:
		return batch
	case now.Before(s.NextProbe):
		return 0
	}
	return 1
}

// Record answers the state after a round of attempts finished at now. Any
// success closes the circuit; failures count up and open it at the
// threshold; a failed probe doubles the wait before the next. A round with
// neither (every attempt throttled, or none made) changes nothing.
func (c Config) Record(s State, r Round, now time.Time) State {
	switch {
	case r.Succeeded > 0:
		return State{}
	case r.Failed == 0:
		return s
	case !s.Open:
		s.Failures += r.Failed
		if s.Failures >= c.threshold() {
			return State{Open: true, Failures: 0, OpenedAt: now, NextProbe: now.Add(c.firstProbe())}
		}
		return s
	}
	s.Failures++
	return State{Open: true, Failures: s.Failures, OpenedAt: s.OpenedAt, NextProbe: now.Add(c.probeWait(s.Failures))}
}

// probeWait is the wait after the n-th failed probe: FirstProbe doubled n
// times, at most MaxProbe.
func (c Config) probeWait(n int) time.Duration {
	d, limit := c.firstProbe(), c.maxProbe()
	for range n {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}
