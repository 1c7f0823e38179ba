package kubestack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/streamspace/enterprise/internal/localproc"
)

// prepareRunDir creates (or locks and cleans up after a killed run) the run
// directory.
func (c *Cluster) prepareRunDir() error {
	if c.runDir == "" {
		sweepTempRunDirs(c.logger)
		dir, err := os.MkdirTemp("", tempRunDirPrefix)
		if err != nil {
			return err
		}
		c.runDir, c.tempRunDir = dir, true
	} else {
		dir, err := filepath.Abs(c.runDir)
		if err != nil {
			return err
		}
		c.runDir = dir
	}
	if err := os.MkdirAll(filepath.Join(c.runDir, "logs"), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(c.runDir, 0o700); err != nil { // it holds keys and the admin token
		return err
	}
	lock, err := localproc.TryLock(filepath.Join(c.runDir, ".lock"))
	if err != nil {
		if c.tempRunDir {
			_ = os.RemoveAll(c.runDir)
		}
		if errors.Is(err, localproc.ErrLocked) {
			return fmt.Errorf("local Kubernetes run directory %s is in use by another process: %w", c.runDir, err)
		}
		return err
	}
	c.lock = lock
	c.pki = newPKI(filepath.Join(c.runDir, "pki"))
	killLeftovers(c.runDir, c.logger)
	// Each start writes fresh logs; the previous run's are kept as *.log.prev.
	logs, _ := filepath.Glob(filepath.Join(c.runDir, "logs", "*.log"))
	for _, l := range logs {
		_ = os.Rename(l, l+".prev")
	}
	return nil
}

const tempRunDirPrefix = "streamspace-kube-"

// sweepTempRunDirs removes the temporary run directories of killed runs
// (Stop removes its own): unlocked, and untouched for a minute, so that one
// being set up right now is left alone.
func sweepTempRunDirs(logger *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempRunDirPrefix+"*"))
	for _, dir := range dirs {
		st, err := os.Stat(dir)
		if err != nil || !st.IsDir() || time.Since(st.ModTime()) < time.Minute {
			continue
		}
		lock, err := localproc.TryLock(filepath.Join(dir, ".lock"))
		if err != nil {
			continue // in use, or not ours to judge
		}
		killLeftovers(dir, logger)
		if err := os.RemoveAll(dir); err == nil {
			logger.Debug("removed the run directory of a killed run", "dir", dir)
		}
		lock.Unlock()
	}
}

// startControllers starts kube-controller-manager and kube-scheduler side
// by side and waits for both.
func (c *Cluster) startControllers(ctx context.Context) error {
	type result struct {
		p   *proc
		err error
	}
	start := func(name, bin string, args func(int) []string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			p, _, err := c.startOnFreePorts(ctx, name, bin, 1, func(ports []int) []string { return args(ports[0]) },
				func(ports []int) string { return "https://" + hostPort(ports[0]) + "/healthz" }, "ok")
			ch <- result{p, err}
		}()
		return ch
	}
	kcm := start(ControllerManager, c.opts.Binaries.ControllerManager, func(port int) []string {
		return controllerManagerArgs(c.pki, c.kubeconfig, port)
	})
	sched := start(Scheduler, c.opts.Binaries.Scheduler, func(port int) []string {
		return schedulerArgs(c.pki, c.kubeconfig, port)
	})
	var errs []error
	for _, ch := range []<-chan result{kcm, sched} {
		r := <-ch
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		c.adopt(r.p)
	}
	return errors.Join(errs...)
}

// startComponent is startOnFreePorts for components started one at a time.
func (c *Cluster) startComponent(ctx context.Context, name, bin string, nPorts int, args func([]int) []string, health func([]int) string, want string) ([]int, error) {
	p, ports, err := c.startOnFreePorts(ctx, name, bin, nPorts, args, health, want)
	if err != nil {
		return nil, err
	}
	c.adopt(p)
	return ports, nil
}

// startOnFreePorts starts a component on nPorts free ports and waits until
// its health endpoint answers; a port taken before the component bound it
// means another try with other ports.
func (c *Cluster) startOnFreePorts(ctx context.Context, name, bin string, nPorts int, args func([]int) []string, health func([]int) string, want string) (*proc, []int, error) {
	for attempt := 1; ; attempt++ {
		ports := make([]int, nPorts)
		for i := range ports {
			port, err := localproc.FreePort()
			if err != nil {
				return nil, nil, err
			}
			ports[i] = port
		}
		began := time.Now()
		p, err := startProc(name, bin, append(args(ports), c.opts.ExtraArgs[name]...), logPath(c.runDir, name))
		if err != nil {
			return nil, nil, err
		}
		err = c.prober.waitHealthy(ctx, p, health(ports), want)
		if err == nil {
			c.logger.Debug("started "+name, "pid", p.Pid(), "ports", ports, "took", time.Since(began).Round(time.Millisecond))
			return p, ports, nil
		}
		p.Kill()
		logTail := p.logTail()
		if attempt < 3 && ctx.Err() == nil && strings.Contains(logTail, "address already in use") {
			c.logger.Warn(name+" port taken, retrying with another", "ports", ports)
			continue
		}
		return nil, nil, fmt.Errorf("%s did not become ready: %w\n%s (tail):\n%s", name, err, p.logPath, lastLines(logTail, 20))
	}
}

// adopt records a started process: it is stopped by Stop, and its pid file
// lets the next Start on this RunDir kill it if this process was killed.
func (c *Cluster) adopt(p *proc) {
	c.procs = append(c.procs, p)
	writePidFile(c.runDir, p)
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
