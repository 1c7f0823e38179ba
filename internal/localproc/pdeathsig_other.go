//go:build !linux

package localproc

import "syscall"

// setPdeathsig is a no-op outside Linux; Stop is the only way the child ends.
func setPdeathsig(*syscall.SysProcAttr, syscall.Signal) {}
