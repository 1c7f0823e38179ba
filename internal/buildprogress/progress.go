package buildprogress

import (
	"log/slog"
	"sync"
	"time"
)

// Progress numbers and times the builds of one command. Steps run one
// after another (it is not for concurrent use); the heartbeat runs beside a
// step while it builds.
type Progress struct {
	logger  *slog.Logger
	dir     string
	total   int
	started int
	built   int
	start   time.Time
	every   time.Duration // HeartbeatEvery; shorter in tests
}

// New starts the report of the builds of planned components (those found
// missing, in the order they will be built) into dir. A nil logger discards
// everything. It announces the plan when there is one.
func New(logger *slog.Logger, dir string, planned []string) *Progress {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Progress{logger: logger, dir: dir, total: len(planned), start: time.Now(), every: HeartbeatEvery}
	if len(planned) > 0 {
		p.logger.Info(PlanLine(planned), "into", dir)
	}
	return p
}

// Step builds component with build, saying when it starts, every
// HeartbeatEvery while it runs, and when it is done. A component that was
// not planned extends the total.
func (p *Progress) Step(component string, build func() error) error {
	p.started++
	p.total = max(p.total, p.started)
	n, total := p.started, p.total
	stepStart := time.Now()
	p.logger.Info(StartLine(component, n, total, time.Since(p.start)))

	stop := p.heartbeat(func(now time.Time) string {
		return HeartbeatLine(component, n, total, now.Sub(stepStart), now.Sub(p.start))
	})
	err := build()
	stop()
	if err != nil {
		return err
	}
	p.built++
	p.logger.Info(DoneLine(component, n, total, time.Since(stepStart), time.Since(p.start)))
	return nil
}

// Waiting says that the builds wait for another process building what (it
// holds the build lock), then again every HeartbeatEvery until stop is
// called.
func (p *Progress) Waiting(what string) (stop func()) {
	since := time.Now()
	p.logger.Info(WaitLine(what, 0, since.Sub(p.start)))
	return p.heartbeat(func(now time.Time) string { return WaitLine(what, now.Sub(since), now.Sub(p.start)) })
}

// heartbeat logs line(now) every p.every until stop is called; nothing is
// logged once stop has returned.
func (p *Progress) heartbeat(line func(now time.Time) string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(p.every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				p.logger.Info(line(now))
			}
		}
	})
	return sync.OnceFunc(func() {
		close(done)
		wg.Wait()
	})
}

// Finish closes the report: the summary with the total time when anything
// was built, else one line saying the cached binaries are used.
func (p *Progress) Finish() {
	if p.built == 0 {
		p.logger.Info(CachedLine(p.dir))
		return
	}
	p.logger.Info(SummaryLine(p.built, time.Since(p.start)))
}
