//go:build !linux

package proc

import "syscall"

// SysProcAttr is nil where the kernel cannot tie a child's life to its parent's.
func SysProcAttr() *syscall.SysProcAttr { return nil }
