package kubestack

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamspace/enterprise/internal/localproc"
)

// Temporary run directories of killed runs are swept; live or fresh ones
// are not.
func TestSweepTempRunDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	old := time.Now().Add(-time.Hour)
	mk := func(name string, mtime time.Time) string {
		dir := filepath.Join(tmp, tempRunDirPrefix+name)
		if err := os.MkdirAll(filepath.Join(dir, "etcd"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale, fresh, live := mk("stale", old), mk("fresh", time.Now()), mk("live", old)
	lock, err := localproc.TryLock(filepath.Join(live, ".lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	_ = os.Chtimes(live, old, old)

	sweepTempRunDirs(slog.New(slog.DiscardHandler))
	for dir, want := range map[string]bool{stale: false, fresh: true, live: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
}
