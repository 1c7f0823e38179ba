package devstack

import (
	"context"
	"errors"
	"os/exec"
	"syscall"

	"github.com/streamspace/enterprise/internal/localproc"
)

// osUser is the account a child process runs as. A nil *osUser means the
// current user.
type osUser struct {
	name string
	uid  uint32
	gid  uint32
}

// newCmd builds a command in its own process group (so a terminal Ctrl-C
// reaches only the parent), optionally running as user, whose cancellation
// through ctx kills the whole group.
func newCmd(ctx context.Context, as *osUser, env []string, name string, args ...string) *exec.Cmd {
	cmd := localproc.Command(ctx, name, args...)
	if as != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: as.uid, Gid: as.gid}
	}
	cmd.Dir = "/"
	cmd.Env = env
	return cmd
}

// exitCode returns the exit status carried by err (-1 if none).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
