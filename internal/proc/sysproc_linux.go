package proc

import "syscall"

// SysProcAttr makes the kernel kill a child process if its parent dies (a test timeout, a
// crash, an interrupted bench), so no orphan keeps holding ports into the next run.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
