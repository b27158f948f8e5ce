//go:build unix && !linux

package mcpclient

import "syscall"

// sysProcAttr starts a stdio server in a process group of its own.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
