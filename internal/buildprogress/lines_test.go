package buildprogress

import (
	"testing"
	"time"
)

func TestLines(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{PlanLine([]string{"kube-apiserver", "temporal"}),
			"building 2 missing components once (a whole first run takes about 15 minutes on two cores, the Kubernetes binaries about 10 of them; later runs seconds): kube-apiserver, temporal"},
		{PlanLine([]string{"kwok"}), "building 1 missing component once (" + FirstRunEstimate + "): kwok"},
		{StartLine("kube-apiserver", 1, 8, 0), "[1/8] building kube-apiserver (0s elapsed)"},
		{StartLine("etcd", 2, 8, 6*time.Minute+1400*time.Millisecond), "[2/8] building etcd (6m1s elapsed)"},
		{HeartbeatLine("kube-apiserver", 1, 8, 90*time.Second, 95*time.Second), "[1/8] still building kube-apiserver: 1m30s on it, 1m35s elapsed"},
		{DoneLine("kwok", 6, 8, 45*time.Second, 9*time.Minute+35*time.Second), "[6/8] built kwok in 45s (9m35s elapsed)"},
		{WaitLine("the Kubernetes binaries in /c/k8s-v1.37.2", 2*time.Minute, 2*time.Minute+3*time.Second),
			"waiting for another process building the Kubernetes binaries in /c/k8s-v1.37.2: 2m0s so far (2m3s elapsed)"},
		{SummaryLine(8, 15*time.Minute+2*time.Second), "built 8 components in 15m2s; later runs use them from the cache"},
		{SummaryLine(1, 40*time.Second), "built 1 component in 40s; later runs use them from the cache"},
		{CachedLine("/c/streamspace"), "using the cached binaries in /c/streamspace"},
		{Duration(-time.Second), "0s"},
		{Duration(499 * time.Millisecond), "0s"},
		{Duration(time.Hour + 2*time.Minute + 3*time.Second), "1h2m3s"},
	} {
		if c.got != c.want {
			t.Errorf("got  %q\nwant %q", c.got, c.want)
		}
	}
}
