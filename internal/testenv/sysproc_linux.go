package testenv

import "syscall"

// sysProcAttr makes the kernel kill the gateway subprocess if the test process dies (a test
// timeout, a crash), so no orphan keeps holding ports into the next test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
