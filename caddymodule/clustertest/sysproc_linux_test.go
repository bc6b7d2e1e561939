package clustertest

import "syscall"

// sysProcAttr makes the kernel kill a redis-server the tests started if the test process dies
// (a timeout, a crash), so no orphan keeps its port.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
