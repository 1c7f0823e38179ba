package localproc

import "syscall"

// setPdeathsig makes the kernel send sig to the child when the thread that
// started it dies, so a long-running child does not outlive a killed parent.
func setPdeathsig(attr *syscall.SysProcAttr, sig syscall.Signal) { attr.Pdeathsig = sig }
