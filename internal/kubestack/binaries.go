package kubestack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/streamspace/enterprise/internal/buildprogress"
	"github.com/streamspace/enterprise/internal/localproc"
)

// Pinned versions of the local control plane.
const (
	// KubernetesVersion is k8s.io/kubernetes as pinned by deploy/k8sbins
	// (its staging modules at v0.37.2, like the project's client-go).
	KubernetesVersion = "v1.37.2"
	// KwokVersion is sigs.k8s.io/kwok, built with `go install`.
	KwokVersion = "v0.8.0"
	// MetricsServerVersion is sigs.k8s.io/metrics-server, built with `go install`.
	MetricsServerVersion = "v0.9.0"
)

const (
	kwokPackage          = "sigs.k8s.io/kwok/cmd/kwok"
	metricsServerPackage = "sigs.k8s.io/metrics-server/cmd/metrics-server"
	// buildModulePath is the module path in deploy/k8sbins/go.mod.
	buildModulePath = "github.com/streamspace/enterprise/deploy/k8sbins"
	// k8sLDFlags make the binaries report KubernetesVersion instead of
	// v0.0.0-master (kubectl version, /version, node skew checks).
	k8sLDFlags = "-s -w -X k8s.io/component-base/version.gitVersion=" + KubernetesVersion +
		" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
)

// k8sPackages maps each binary built in deploy/k8sbins to its package.
var k8sPackages = []struct{ name, pkg string }{
	{"kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"},
	{"etcd", "./cmd/etcd"},
	{"kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager"},
	{"kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"},
	{"kubectl", "k8s.io/kubernetes/cmd/kubectl"},
}

// Binaries are the paths of the control plane's executables.
type Binaries struct {
	Dir               string // <cacheDir>/k8s-v1.37.2
	APIServer         string
	Etcd              string
	ControllerManager string
	Scheduler         string
	Kubectl           string
	Kwok              string // in its own versioned subdirectory of Dir
	MetricsServer     string // likewise
}

// BinariesIn returns where the binaries live under cacheDir (built or not).
func BinariesIn(cacheDir string) Binaries {
	dir := filepath.Join(cacheDir, "k8s-"+KubernetesVersion)
	return Binaries{
		Dir:               dir,
		APIServer:         filepath.Join(dir, "kube-apiserver"),
		Etcd:              filepath.Join(dir, "etcd"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Scheduler:         filepath.Join(dir, "kube-scheduler"),
		Kubectl:           filepath.Join(dir, "kubectl"),
		Kwok:              filepath.Join(dir, "kwok-"+KwokVersion, "kwok"),
		MetricsServer:     filepath.Join(dir, "metrics-server-"+MetricsServerVersion, "metrics-server"),
	}
}

// goInstalls are the binaries built with `go install pkg@version` (no
// replace directives), each into its own path.
func (b Binaries) goInstalls() []struct{ name, pkg, path string } {
	return []struct{ name, pkg, path string }{
		{"kwok", kwokPackage + "@" + KwokVersion, b.Kwok},
		{"metrics-server", metricsServerPackage + "@" + MetricsServerVersion, b.MetricsServer},
	}
}

// missing lists the binaries not built yet: those of deploy/k8sbins, and
// those installed with `go install`.
func (b Binaries) missing() (k8s, installs []string) {
	for _, p := range k8sPackages {
		if !localproc.IsExecutable(filepath.Join(b.Dir, p.name)) {
			k8s = append(k8s, p.name)
		}
	}
	for _, i := range b.goInstalls() {
		if !localproc.IsExecutable(i.path) {
			installs = append(installs, i.name)
		}
	}
	return k8s, installs
}

// MissingBinaries names the binaries not built in cacheDir yet, in the order
// EnsureBinaries builds them (for a buildprogress plan).
func MissingBinaries(cacheDir string) []string {
	k8s, installs := BinariesIn(cacheDir).missing()
	return append(k8s, installs...)
}

// EnsureBinaries returns the control plane's binaries in
// <cacheDir>/k8s-v1.37.2/, building those that are missing first: the
// Kubernetes ones with `go build` in moduleDir (the repository's
// deploy/k8sbins, whose go.sum pins every dependency), one after another
// (the build cache shares what they have in common), kwok and metrics-server
// with `go install`. Each build is a step of progress (n of m, elapsed, a
// heartbeat while it runs; nil reports nothing). A first build takes about 10
// minutes on two cores, then it is a no-op.
// Builds run under a lock (concurrent callers wait for one build) into a
// temporary directory renamed into place, so a killed build leaves no half
// binary. moduleDir may be "" when everything is built already.
func EnsureBinaries(ctx context.Context, cacheDir, moduleDir string, progress *buildprogress.Progress) (Binaries, error) {
	return ensureBinaries(ctx, cacheDir, moduleDir, "go", progress)
}

func ensureBinaries(ctx context.Context, cacheDir, moduleDir, goTool string, progress *buildprogress.Progress) (Binaries, error) {
	if progress == nil {
		progress = buildprogress.New(nil, cacheDir, nil)
	}
	if cacheDir == "" {
		return Binaries{}, errors.New("kubestack: no cache directory")
	}
	b := BinariesIn(cacheDir)
	if k8s, installs := b.missing(); len(k8s)+len(installs) == 0 {
		return b, nil
	}
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return b, err
	}
	stopWaiting := func() {}
	lock, err := localproc.WaitLock(ctx, filepath.Join(b.Dir, ".build.lock"), func(error) {
		stopWaiting = progress.Waiting("the Kubernetes binaries in " + b.Dir)
	})
	stopWaiting()
	if err != nil {
		return b, err
	}
	defer lock.Unlock()
	k8s, installs := b.missing() // again: whoever held the lock may have built them
	if len(k8s)+len(installs) == 0 {
		return b, nil
	}
	goBin, err := exec.LookPath(goTool)
	if err != nil {
		return b, fmt.Errorf("building the Kubernetes binaries needs the go command: %w", err)
	}
	if len(k8s) > 0 {
		if err := checkBuildModule(moduleDir); err != nil {
			return b, fmt.Errorf("kubernetes binaries %s are not built in %s: %w", strings.Join(k8s, ", "), b.Dir, err)
		}
		if err := buildK8s(ctx, goBin, moduleDir, b.Dir, k8s, progress); err != nil {
			return b, err
		}
	}
	for _, i := range b.goInstalls() {
		if slices.Contains(installs, i.name) {
			if err := progress.Step(i.name, func() error { return goInstall(ctx, goBin, i.pkg, i.path) }); err != nil {
				return b, err
			}
		}
	}
	return b, nil
}

// buildK8s builds the named binaries of deploy/k8sbins into dir, one `go
// build` (one progress step) each.
func buildK8s(ctx context.Context, goBin, moduleDir, dir string, names []string, progress *buildprogress.Progress) error {
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	env := buildEnv("GOFLAGS=-mod=readonly -buildvcs=false")
	for _, p := range k8sPackages {
		if !slices.Contains(names, p.name) {
			continue
		}
		err := progress.Step(p.name, func() error {
			args := []string{"build", "-trimpath", "-ldflags", k8sLDFlags, "-o", tmp + string(filepath.Separator), p.pkg}
			if err := runGo(ctx, goBin, moduleDir, env, args); err != nil {
				return err
			}
			return moveInto(filepath.Join(tmp, p.name), filepath.Join(dir, p.name))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// goInstall installs pkg (path@version) as path.
func goInstall(ctx context.Context, goBin, pkg, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// Run outside any module, so only the package's own go.mod applies.
	env := buildEnv("GOFLAGS=-buildvcs=false", "GOBIN="+tmp)
	if err := runGo(ctx, goBin, tmp, env, []string{"install", "-trimpath", "-ldflags", "-s -w", pkg}); err != nil {
		return err
	}
	return moveInto(filepath.Join(tmp, filepath.Base(path)), path)
}

// buildEnv is the environment minus anything that could redirect the build,
// plus a static (cgo-free) build outside any workspace.
func buildEnv(extra ...string) []string {
	drop := []string{"GOBIN=", "GOWORK=", "GOFLAGS=", "CGO_ENABLED=", "GOOS=", "GOARCH="}
	return localproc.EnvWithout(drop, append([]string{"GOWORK=off", "CGO_ENABLED=0"}, extra...)...)
}

func runGo(ctx context.Context, goBin, dir string, env, args []string) error {
	// Its own process group, so that cancelling stops the compilers too.
	cmd := localproc.Command(ctx, goBin, args...)
	cmd.Dir, cmd.Env = dir, env
	out := localproc.NewTailBuffer(8 << 10)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, out)
	}
	return nil
}

func moveInto(built, path string) error {
	if !localproc.IsExecutable(built) {
		return fmt.Errorf("the build produced no %s", built)
	}
	return os.Rename(built, path)
}

// checkBuildModule verifies that dir is the deploy/k8sbins module.
func checkBuildModule(dir string) error {
	if dir == "" {
		return errors.New("no deploy/k8sbins module given to build them from (run from the repository, or build them there first)")
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return fmt.Errorf("deploy/k8sbins module: %w", err)
	}
	if !strings.Contains(string(b), "module "+buildModulePath+"\n") {
		return fmt.Errorf("%s is not the module %s", dir, buildModulePath)
	}
	return nil
}

// FindBuildModule looks for deploy/k8sbins in dir and its parents, for
// callers that run somewhere inside the repository (tests, `make run`).
func FindBuildModule(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		candidate := filepath.Join(dir, "deploy", "k8sbins")
		if checkBuildModule(candidate) == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("deploy/k8sbins not found in this directory or its parents")
		}
		dir = parent
	}
}
