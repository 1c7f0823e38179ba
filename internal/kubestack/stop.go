package kubestack

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/streamspace/enterprise/internal/localproc"
)

// watchExits closes Exited when any component ends.
func (c *Cluster) watchExits() {
	for _, p := range c.procs {
		go func() {
			<-p.Exited()
			select {
			case <-c.stopping:
				return
			default:
			}
			c.exitOnce.Do(func() {
				c.exitReason = fmt.Sprintf("%s (pid %d) exited: %v; see %s", p.name, p.Pid(), p.Err(), p.logPath)
				// The log goes with a temporary RunDir: keep its end in the
				// report, so a failed test run says why.
				c.logger.Error("local Kubernetes component exited", "component", p.name, "err", p.Err(), "log", p.logPath,
					"log_tail", localproc.ReadTail(p.logPath, 2048))
				close(c.exited)
			})
		}()
	}
}

// Stop stops the components in reverse start order (metrics-server, kwok,
// the scheduler and controller manager side by side, then the apiserver,
// then etcd): SIGTERM to each process group, SIGKILL after StopTimeout. A
// temporary RunDir is removed. Idempotent.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		close(c.stopping)
		began := time.Now()
		var errs []error
		var mu sync.Mutex
		// Clients of the apiserver stop side by side; then the apiserver;
		// then etcd.
		for _, phase := range []func(string) bool{isClient, is(APIServer), is(Etcd)} {
			var wg sync.WaitGroup
			for _, p := range c.procs {
				if !phase(p.name) {
					continue
				}
				wg.Go(func() {
					if err := p.stop(c.opts.StopTimeout); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					removePidFile(c.runDir, p)
				})
			}
			wg.Wait()
		}
		c.lock.Unlock()
		if c.tempRunDir {
			if err := os.RemoveAll(c.runDir); err != nil {
				errs = append(errs, err)
			}
		}
		c.stopErr = errors.Join(errs...)
		if len(c.procs) > 0 {
			c.logger.Info("local Kubernetes stopped", "took", time.Since(began).Round(time.Millisecond))
		}
	})
	return c.stopErr
}

func isClient(name string) bool { return name != Etcd && name != APIServer }

func is(component string) func(string) bool {
	return func(name string) bool { return name == component }
}
