// Package buildprogress reports the first-run builds of `streamspace dev`,
// `streamspace testenv` and `make k8s-bins` (the Kubernetes binaries, the
// Temporal CLI): which component is being built, n of m, the time elapsed,
// a heartbeat while one long `go build` runs, and a closing summary, so that
// a first run (about 15 minutes on two cores) never sits on one silent line.
// When nothing needs building it says so in one line.
//
// lines.go holds the wording (pure); progress.go logs it as builds run.
package buildprogress

import (
	"fmt"
	"strings"
	"time"
)

// HeartbeatEvery is how often a build still running says so.
const HeartbeatEvery = 30 * time.Second

// FirstRunEstimate is what a first run builds in on two cores (measured: 15
// minutes, the Kubernetes binaries about 10 of them).
const FirstRunEstimate = "a whole first run takes about 15 minutes on two cores, the Kubernetes binaries about 10 of them; later runs seconds"

// PlanLine announces the components to build.
func PlanLine(components []string) string {
	return fmt.Sprintf("building %d missing %s once (%s): %s",
		len(components), plural(len(components), "component", "components"), FirstRunEstimate, strings.Join(components, ", "))
}

// StartLine says that component, the n-th of total, starts building.
func StartLine(component string, n, total int, elapsed time.Duration) string {
	return fmt.Sprintf("[%d/%d] building %s (%s elapsed)", n, total, component, Duration(elapsed))
}

// HeartbeatLine says that component is still building, for how long, and
// how long the builds have taken so far.
func HeartbeatLine(component string, n, total int, onIt, elapsed time.Duration) string {
	return fmt.Sprintf("[%d/%d] still building %s: %s on it, %s elapsed", n, total, component, Duration(onIt), Duration(elapsed))
}

// DoneLine says that component is built and how long it took.
func DoneLine(component string, n, total int, took, elapsed time.Duration) string {
	return fmt.Sprintf("[%d/%d] built %s in %s (%s elapsed)", n, total, component, Duration(took), Duration(elapsed))
}

// WaitLine says the builds wait for another process building what, for how
// long so far.
func WaitLine(what string, waited, elapsed time.Duration) string {
	return fmt.Sprintf("waiting for another process building %s: %s so far (%s elapsed)", what, Duration(waited), Duration(elapsed))
}

// SummaryLine closes the builds: how many components were built in how long.
func SummaryLine(built int, total time.Duration) string {
	return fmt.Sprintf("built %d %s in %s; later runs use them from the cache",
		built, plural(built, "component", "components"), Duration(total))
}

// CachedLine says nothing needed building.
func CachedLine(dir string) string {
	return "using the cached binaries in " + dir
}

// Duration renders d to the second: "0s", "45s", "9m35s", "1h2m3s".
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
