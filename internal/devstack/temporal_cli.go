package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/streamspace/enterprise/internal/buildprogress"
	"github.com/streamspace/enterprise/internal/localproc"
)

// TemporalCLIVersion is the pinned Temporal CLI (go install
// github.com/temporalio/cli/cmd/temporal@TemporalCLIVersion).
const TemporalCLIVersion = "v1.5.1"

const temporalCLIPackage = "github.com/temporalio/cli/cmd/temporal"

// DefaultCacheDir is $XDG_CACHE_HOME/streamspace, else ~/.cache/streamspace.
// It holds builds that live outside the repository (the Temporal CLI, ...).
func DefaultCacheDir() (string, error) {
	if dir := os.Getenv("XDG_CACHE_HOME"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "streamspace"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locate the cache directory: %w", err)
	}
	return filepath.Join(home, ".cache", "streamspace"), nil
}

// TemporalCLIPath is where the pinned CLI lives in cacheDir:
// cacheDir/bin/temporal-v1.5.1/temporal. An empty cacheDir means
// DefaultCacheDir() (and "" is returned if that cannot be determined).
func TemporalCLIPath(cacheDir string) string {
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return ""
		}
		cacheDir = d
	}
	return filepath.Join(cacheDir, "bin", "temporal-"+TemporalCLIVersion, "temporal")
}

// TemporalCLIComponent names the Temporal CLI in build progress.
const TemporalCLIComponent = "temporal-cli"

// MissingTemporalCLI is [TemporalCLIComponent] when the pinned CLI is not
// built in cacheDir yet, else empty (for a buildprogress plan).
func MissingTemporalCLI(cacheDir string) []string {
	if localproc.IsExecutable(TemporalCLIPath(cacheDir)) {
		return nil
	}
	return []string{TemporalCLIComponent}
}

// EnsureTemporalCLI returns the path of the pinned Temporal CLI, building it
// with `go install` first if it is missing (about 5 minutes on two cores,
// once), as a step of progress (nil reports nothing). The build goes to a
// temporary directory that is renamed into place, so an interrupted build
// leaves no half binary; concurrent callers wait for one build. An empty
// cacheDir means DefaultCacheDir().
func EnsureTemporalCLI(ctx context.Context, cacheDir string, progress *buildprogress.Progress) (string, error) {
	return ensureTemporalCLI(ctx, cacheDir, "go", progress)
}

func ensureTemporalCLI(ctx context.Context, cacheDir, goTool string, progress *buildprogress.Progress) (string, error) {
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return "", err
		}
		cacheDir = d
	}
	if progress == nil {
		progress = buildprogress.New(nil, cacheDir, nil)
	}
	path := TemporalCLIPath(cacheDir)
	if localproc.IsExecutable(path) {
		return path, nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	stopWaiting := func() {}
	lock, err := localproc.WaitLock(ctx, filepath.Join(dir, ".build.lock"), func(error) {
		stopWaiting = progress.Waiting("the Temporal CLI in " + dir)
	})
	stopWaiting()
	if err != nil {
		return "", err
	}
	defer lock.Unlock()
	if localproc.IsExecutable(path) { // built by whoever held the lock
		return path, nil
	}

	goBin, err := exec.LookPath(goTool)
	if err != nil {
		return "", fmt.Errorf("building the Temporal CLI needs the go command: %w", err)
	}
	if err := progress.Step(TemporalCLIComponent, func() error { return goInstallCLI(ctx, goBin, dir, path) }); err != nil {
		return "", err
	}
	return path, nil
}

// goInstallCLI installs the pinned CLI into a temporary directory in dir and
// renames it to path.
func goInstallCLI(ctx context.Context, goBin, dir, path string) error {
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	pkg := temporalCLIPackage + "@" + TemporalCLIVersion
	out := localproc.NewTailBuffer(8 << 10)
	cmd := newCmd(ctx, nil, localproc.EnvWithout([]string{"GOBIN=", "GOWORK="}, "GOBIN="+tmp, "GOWORK=off"), goBin, "install", pkg)
	cmd.Dir = tmp // outside any module, so only the CLI's own go.mod applies
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return fmt.Errorf("go install %s: %w\n%s", pkg, err, out)
	}
	built := filepath.Join(tmp, "temporal")
	if !localproc.IsExecutable(built) {
		return fmt.Errorf("go install %s produced no %s\n%s", pkg, built, out)
	}
	return os.Rename(built, path)
}
