package main

import "syscall"
import "unsafe"

// monotonicNs is CLOCK_MONOTONIC in ns, the clock the Python writer stamps values with.
func monotonicNs() int64 {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Sec*1e9 + ts.Nsec
}
