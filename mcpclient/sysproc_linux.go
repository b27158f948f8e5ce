package mcpclient

import "syscall"

// sysProcAttr starts a stdio server in a process group of its own, and has
// the kernel kill it if Kelpie dies without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
