package localproc

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Child is a long-running child process (a server) started by Start.
type Child struct {
	Cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// Start starts cmd (built with exec.Command: ctx must not bound a server's
// life) in its own process group, so a terminal Ctrl-C reaches only the
// parent, which stops it in order, and with Pdeathsig=SIGTERM (Linux), so it
// does not outlive a killed parent. It sets those in cmd.SysProcAttr
// (creating it if nil). The error is cmd.Start's.
//
// Pdeathsig fires when the thread that forked the child exits, not the
// process, and Go may end a thread whose goroutine was locked to it. So the
// child is started from a goroutine locked to its own thread that lives
// exactly as long as the child, and that goroutine reaps it.
func Start(cmd *exec.Cmd) (*Child, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	setPdeathsig(cmd.SysProcAttr, syscall.SIGTERM)
	c := &Child{Cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.err = cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// Pid is the child's process id (and its process group's).
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Exited is closed when the child has ended and been reaped.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Err is the child's exit status (cmd.Wait's error) once Exited is closed,
// nil before.
func (c *Child) Err() error {
	select {
	case <-c.exited:
		return c.err
	default:
		return nil
	}
}

// Stop sends SIGTERM to the child's process group, SIGKILL after grace, and
// waits for the exit; killed says whether SIGKILL was needed. A child that
// has exited already gets SIGKILL for stragglers left in its group. The
// error says the child survived even SIGKILL (for 10s).
func (c *Child) Stop(grace time.Duration) (killed bool, err error) {
	pid := c.Pid()
	select {
	case <-c.exited:
		_ = SignalGroup(pid, syscall.SIGKILL) // stragglers in the group, if any
		return false, nil
	default:
	}
	_ = SignalGroup(pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.exited:
		return false, nil
	case <-t.C:
	}
	c.Kill()
	select {
	case <-c.exited:
		return true, nil
	default:
		return true, fmt.Errorf("pid %d did not exit after SIGKILL", pid)
	}
}

// Kill SIGKILLs the child's process group and waits up to 10s for the exit.
func (c *Child) Kill() {
	_ = SignalGroup(c.Pid(), syscall.SIGKILL)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
	}
}
