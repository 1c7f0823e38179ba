package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkSessionStart200 starts 200 sessions through the API on 20
// simulated nodes, with the worker and the server as separate processes
// (this test binary re-executed), and reports the time until all are
// Running, each session's time from POST to Running (p50, p99), and the peak
// memory (VmHWM) of the kube-apiserver, the worker and the server.
//
//	make build && bin/streamspace testenv -- go test -run '^$' -bench SessionStart200 -benchtime 1x ./cmd/streamspace/
func BenchmarkSessionStart200(b *testing.B) {
	const sessions, nodes, clients = 200, 20, 16
	s := newSessionBench(b, nodes)
	for b.Loop() {
		r := s.start(b, sessions, clients)
		reportStages(b, r.posted, r.answered, r.created, r.pods, r.running)
		reportFirstStep(b, s.tc, slices.Collect(maps.Keys(r.posted)))
		r.report(b, "")
		b.StopTimer()
		s.end(b, r)
		b.StartTimer()
	}
	b.ReportMetric(peakMiB(b, s.pids["kube-apiserver"]), "MiB-apiserver")
	b.ReportMetric(peakMiB(b, s.pids["worker"]), "MiB-worker")
	b.ReportMetric(peakMiB(b, s.pids["server"]), "MiB-server")
}

// peakMiB is a process's peak resident memory (VmHWM).
func peakMiB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			require.NoError(b, err)
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no VmHWM for pid %d", pid)
	return 0
}
