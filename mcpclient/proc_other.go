//go:build !unix

package mcpclient

import (
	"os"
	"syscall"
)

var (
	sigTerm os.Signal = os.Interrupt
	sigKill os.Signal = os.Kill
)

// sysProcAttr: no process groups here.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// signalGroup signals the server process only: this platform has no
// process groups to signal.
func signalGroup(p *os.Process, sig os.Signal) {
	if sig == os.Kill {
		p.Kill()
		return
	}
	p.Signal(sig)
}
