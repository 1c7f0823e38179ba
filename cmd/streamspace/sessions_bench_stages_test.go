package main

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/wfid"
	"github.com/streamspace/enterprise/schemas/kubeapi"
	"github.com/streamspace/enterprise/workflows"
)

// podTimes is when the benchmark saw each session's pod created, bound to
// a node, and running (kwok's part), by session id.
type podTimes struct {
	mu                        sync.Mutex
	created, scheduled, ready map[string]time.Time
	stop                      func()
}

// watchPods records the stages of the sessions' pods until stop.
func watchPods(b *testing.B, kube *activities.Kube, ns string) *podTimes {
	w, err := kube.Clientset.CoreV1().Pods(ns).Watch(b.Context(), metav1.ListOptions{LabelSelector: kubeapi.LabelSession})
	require.NoError(b, err)
	p := &podTimes{created: map[string]time.Time{}, scheduled: map[string]time.Time{}, ready: map[string]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			now, id := time.Now(), pod.Labels[kubeapi.LabelSession]
			p.mu.Lock()
			first := func(m map[string]time.Time) {
				if _, seen := m[id]; !seen {
					m[id] = now
				}
			}
			first(p.created)
			if pod.Spec.NodeName != "" {
				first(p.scheduled)
			}
			if pod.Status.Phase == corev1.PodRunning {
				first(p.ready)
			}
			p.mu.Unlock()
		}
	}()
	p.stop = func() { w.Stop(); <-done }
	return p
}

// reportStages logs the p50 and p99 of each stage of a session's start:
// the API (POST to its answer), the workflow's first step (to Session
// created), the
// session controller (to pod created), the scheduler (to bound), kwok (to
// pod running) and the controller and workflow again (to Session Running).
func reportStages(b *testing.B, posted, answered, created map[string]time.Time, pods *podTimes,
	running map[string]time.Time) {
	pods.mu.Lock()
	defer pods.mu.Unlock()
	stages := []struct {
		name     string
		from, to map[string]time.Time
	}{
		{"POST→202", posted, answered},
		{"202→Session", answered, created},
		{"Session→pod", created, pods.created},
		{"pod→bound", pods.created, pods.scheduled},
		{"bound→pod running", pods.scheduled, pods.ready},
		{"pod running→Session Running", pods.ready, running},
	}
	var parts []string
	for _, st := range stages {
		var d []time.Duration
		for id, t0 := range st.from {
			if t1, ok := st.to[id]; ok {
				d = append(d, t1.Sub(t0))
			}
		}
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		parts = append(parts, fmt.Sprintf("%s p50 %v p99 %v", st.name, d[len(d)/2].Round(time.Millisecond),
			d[len(d)*99/100].Round(time.Millisecond)))
	}
	b.Logf("stages: %s", strings.Join(parts, "; "))
}

// benchIDPrefix is the benchmark stack's TEMPORAL_WORKFLOW_ID_PREFIX.
const benchIDPrefix = "bench"

// reportFirstStep reads each session's workflow history and logs where the
// first step's time went: the workflow task waiting in its queue (start to
// first task started), the activity that creates the Session waiting in
// its queue (scheduled to started), and running (started to completed),
// and the history of the slowest to get there.
func reportFirstStep(b *testing.B, tc client.Client, ids []string) {
	var queued, actQueued, actRun []time.Duration
	var slowest time.Duration
	var slowestTrace string
	for _, id := range ids {
		var trace []string
		iter := tc.GetWorkflowHistory(b.Context(), wfid.Join(benchIDPrefix, workflows.SessionWorkflowID(id)), "", false,
			enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var startedAt, actScheduled time.Time
		var gotTask, gotAct bool
		for iter.HasNext() {
			ev, err := iter.Next()
			require.NoError(b, err)
			at := ev.GetEventTime().AsTime()
			if !startedAt.IsZero() {
				trace = append(trace, fmt.Sprintf("%s +%v", strings.TrimPrefix(ev.GetEventType().String(), "EVENT_TYPE_"),
					at.Sub(startedAt).Round(time.Millisecond)))
			}
			switch ev.GetEventType() {
			case enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
				startedAt = at
			case enums.EVENT_TYPE_WORKFLOW_TASK_STARTED:
				if !gotTask {
					queued, gotTask = append(queued, at.Sub(startedAt)), true
				}
			case enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				if !gotAct {
					actScheduled = at
				}
			case enums.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				if !gotAct {
					actQueued = append(actQueued, at.Sub(actScheduled))
				}
			case enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				if !gotAct {
					actRun, gotAct = append(actRun, at.Sub(actScheduled)), true
				}
			}
			if gotAct {
				if d := at.Sub(startedAt); d > slowest {
					slowest, slowestTrace = d, strings.Join(trace, ", ")
				}
				break
			}
		}
	}
	pct := func(d []time.Duration) string {
		if len(d) == 0 {
			return "-"
		}
		slices.Sort(d)
		return fmt.Sprintf("p50 %v p99 %v", d[len(d)/2].Round(time.Millisecond), d[len(d)*99/100].Round(time.Millisecond))
	}
	b.Logf("first step: workflow task queued %s; CreateSessionResource queued %s, scheduled to completed %s",
		pct(queued), pct(actQueued), pct(actRun))
	b.Logf("slowest first step (%v): %s", slowest.Round(time.Millisecond), slowestTrace)
}
