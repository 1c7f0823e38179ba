package breaker

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func TestClosedCircuitAllowsTheBatch(t *testing.T) {
	var s State
	if got := s.Allow(t0, 50); got != 50 {
		t.Fatalf("closed: Allow = %d, want 50", got)
	}
}

func TestOpensAtTheThreshold(t *testing.T) {
	c := Config{Threshold: 5}
	s := c.Record(State{}, Round{Failed: 3}, t0)
	if s.Open || s.Failures != 3 {
		t.Fatalf("after 3 failures: %+v, want closed with 3", s)
	}
	s = c.Record(s, Round{Failed: 1}, t0)
	if s.Open {
		t.Fatal("opened at 4 of 5")
	}
	s = c.Record(s, Round{Failed: 1}, t0.Add(time.Second))
	if !s.Open || !s.OpenedAt.Equal(t0.Add(time.Second)) || !s.NextProbe.Equal(t0.Add(time.Second+DefaultFirstProbe)) {
		t.Fatalf("after 5 failures: %+v", s)
	}
	if got := s.Allow(s.NextProbe.Add(-time.Millisecond), 50); got != 0 {
		t.Fatalf("open before the probe: Allow = %d, want 0", got)
	}
	if got := s.Allow(s.NextProbe, 50); got != 1 {
		t.Fatalf("open at the probe: Allow = %d, want 1", got)
	}
}

func TestASuccessResetsTheCount(t *testing.T) {
	c := Config{Threshold: 5}
	s := c.Record(State{}, Round{Failed: 4}, t0)
	s = c.Record(s, Round{Succeeded: 1, Failed: 10}, t0)
	if s != (State{}) {
		t.Fatalf("a round with a success: %+v, want closed and clear", s)
	}
	s = c.Record(s, Round{Failed: 4}, t0)
	if s.Open {
		t.Fatal("opened after 4 failures since the success")
	}
}

func TestFailedProbesBackOffToTheCap(t *testing.T) {
	c := Config{Threshold: 1, FirstProbe: 30 * time.Second, MaxProbe: 5 * time.Minute}
	s := c.Record(State{}, Round{Failed: 1}, t0)
	now := t0
	var waits []time.Duration
	for range 6 {
		now = s.NextProbe
		s = c.Record(s, Round{Failed: 1}, now)
		waits = append(waits, s.NextProbe.Sub(now))
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits after failed probes = %v, want %v", waits, want)
		}
	}
	if !s.Open || !s.OpenedAt.Equal(t0) || s.Failures != 6 {
		t.Fatalf("state after 6 failed probes: %+v", s)
	}
	if s = c.Record(s, Round{Succeeded: 1}, now); s.Open {
		t.Fatal("a successful probe leaves it open")
	}
}

func TestRoundsWithoutOutcomeChangeNothing(t *testing.T) {
	c := Config{}
	open := c.Record(State{}, Round{Failed: DefaultThreshold}, t0)
	if got := c.Record(open, Round{}, t0.Add(time.Hour)); got != open {
		t.Fatalf("empty round on an open circuit: %+v, want %+v", got, open)
	}
	if got := c.Record(State{Failures: 2}, Round{}, t0); got != (State{Failures: 2}) {
		t.Fatalf("empty round on a closed circuit: %+v", got)
	}
}

func TestDefaultsAndAHugeCount(t *testing.T) {
	c := Config{MaxProbe: time.Second} // below FirstProbe: the first probe wait wins
	if got := c.probeWait(0); got != DefaultFirstProbe {
		t.Fatalf("probeWait(0) = %v", got)
	}
	if got := (Config{}).probeWait(1 << 20); got != DefaultMaxProbe {
		t.Fatalf("probeWait(huge) = %v, want the cap", got)
	}
}
