package buildprogress

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a slog handler that keeps each message and announces it.
type recorder struct {
	mu    sync.Mutex
	lines []string
	sent  chan string
}

func newRecorder() *recorder { return &recorder{sent: make(chan string, 100)} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.lines = append(r.lines, rec.Message)
	r.mu.Unlock()
	select {
	case r.sent <- rec.Message:
	default: // nobody is waiting for lines any more
	}
	return nil
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// waitFor returns once a message matching re is logged.
func (r *recorder) waitFor(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-r.sent:
			if re.MatchString(m) {
				return
			}
		case <-deadline:
			t.Fatalf("no line matching %s; logged:\n%s", re, strings.Join(r.all(), "\n"))
		}
	}
}

func TestProgressStepsHeartbeatAndSummary(t *testing.T) {
	rec := newRecorder()
	p := New(slog.New(rec), "/cache", []string{"kube-apiserver", "kwok"})
	p.every = 5 * time.Millisecond

	// The long build ends only after two heartbeats have been seen.
	heartbeat := regexp.MustCompile(`^\[1/2\] still building kube-apiserver: \d+s on it, \d+s elapsed$`)
	if err := p.Step("kube-apiserver", func() error {
		rec.waitFor(t, heartbeat)
		rec.waitFor(t, heartbeat)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Step("kwok", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	p.Finish()

	var got []string
	for _, l := range rec.all() {
		if !heartbeat.MatchString(l) {
			got = append(got, l)
		}
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`^building 2 missing components once \(a whole first run takes about 15 minutes on two cores.*\): kube-apiserver, kwok$`),
		regexp.MustCompile(`^\[1/2\] building kube-apiserver \(\d+s elapsed\)$`),
		regexp.MustCompile(`^\[1/2\] built kube-apiserver in \d+s \(\d+s elapsed\)$`),
		regexp.MustCompile(`^\[2/2\] building kwok \(\d+s elapsed\)$`),
		regexp.MustCompile(`^\[2/2\] built kwok in \d+s \(\d+s elapsed\)$`),
		regexp.MustCompile(`^built 2 components in \d+s; later runs use them from the cache$`),
	}
	if len(got) != len(want) {
		t.Fatalf("lines:\n%s", strings.Join(rec.all(), "\n"))
	}
	for i, re := range want {
		if !re.MatchString(got[i]) {
			t.Fatalf("line %d = %q, want %s; all:\n%s", i, got[i], re, strings.Join(rec.all(), "\n"))
		}
	}
	// Heartbeats only while the build ran: none after its "built" line.
	lines := rec.all()
	for i, l := range lines {
		if strings.HasPrefix(l, "[1/2] built ") {
			for _, later := range lines[i:] {
				if heartbeat.MatchString(later) {
					t.Fatalf("heartbeat after the step was done:\n%s", strings.Join(lines, "\n"))
				}
			}
		}
	}
}

func TestProgressFailedStepAndUnplanned(t *testing.T) {
	rec := newRecorder()
	p := New(slog.New(rec), "/cache", []string{"temporal"})
	boom := errors.New("compile error")
	if err := p.Step("temporal", func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Step = %v, want the build's error", err)
	}
	for _, l := range rec.all() {
		if strings.Contains(l, "built") {
			t.Fatalf("a failed build was reported built: %q", l)
		}
	}
	// A step beyond the plan extends the total instead of saying "2 of 1".
	if err := p.Step("kwok", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\[2/2\] built kwok in`).MatchString(rec.all()[len(rec.all())-1]) {
		t.Fatalf("lines:\n%s", strings.Join(rec.all(), "\n"))
	}
}

func TestProgressWaiting(t *testing.T) {
	rec := newRecorder()
	p := New(slog.New(rec), "/cache", nil)
	p.every = 5 * time.Millisecond
	stop := p.Waiting("the Temporal CLI")
	again := regexp.MustCompile(`^waiting for another process building the Temporal CLI: \d+s so far \(\d+s elapsed\)$`)
	rec.waitFor(t, again) // the first line
	rec.waitFor(t, again) // a heartbeat
	stop()
	n := len(rec.all())
	stop() // twice is harmless
	p.Finish()
	if got := rec.all(); len(got) != n+1 || got[n] != "using the cached binaries in /cache" {
		t.Fatalf("after the wait, lines:\n%s", strings.Join(got, "\n"))
	}
}

func TestProgressNothingToBuild(t *testing.T) {
	rec := newRecorder()
	p := New(slog.New(rec), "/home/u/.cache/streamspace", nil)
	p.Finish()
	if got := rec.all(); len(got) != 1 || got[0] != "using the cached binaries in /home/u/.cache/streamspace" {
		t.Fatalf("cached run logged %q, want the one line", got)
	}
	New(nil, "/x", []string{"a"}).Finish() // a nil logger discards
}
