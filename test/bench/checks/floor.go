package main

import (
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// floorResult is what the bare syscalls of the checks cost.
type floorResult struct {
	probes, failures int64
	wall, cpu, sys   time.Duration
}

// floor runs the bare syscalls of one TCP check back to back on one thread,
// for d, against the n listeners in turn: socket, non-blocking connect,
// wait for it, shutdown, read to EOF, close. No checker can do a check for
// less; the checker's CPU per probe is read against this figure, measured
// in the same run against the same listeners.
func floor(n int, d time.Duration, target func(int) (netip.AddrPort, error)) (floorResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	addrs := make([]*unix.SockaddrInet4, n)
	for i := range addrs {
		ap, err := target(i)
		if err != nil {
			return floorResult{}, err
		}
		addrs[i] = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	buf := make([]byte, 512)
	pfd := make([]unix.PollFd, 1)
	var r floorResult
	before, err := rusage()
	if err != nil {
		return r, err
	}
	start := time.Now()
	for i := 0; ; i++ {
		if i%64 == 0 && time.Since(start) >= d {
			break
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return r, fmt.Errorf("floor: socket: %w", err)
		}
		r.probes++
		if err := unix.Connect(fd, addrs[i%n]); err != nil && err != unix.EINPROGRESS {
			r.failures++
			unix.Close(fd)
			continue
		}
		pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
		if _, err := unix.Poll(pfd, 1000); err != nil || pfd[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 || pfd[0].Revents&unix.POLLOUT == 0 {
			r.failures++
			unix.Close(fd)
			continue
		}
		unix.Shutdown(fd, unix.SHUT_WR)
		for {
			pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
			if k, err := unix.Poll(pfd, 200); k == 0 || (err != nil && err != unix.EINTR) {
				break
			}
			if k, err := unix.Read(fd, buf); k == 0 || (err != nil && err != unix.EAGAIN && err != unix.EINTR) {
				break
			}
		}
		unix.Close(fd)
	}
	r.wall = time.Since(start)
	after, err := rusage()
	if err != nil {
		return r, err
	}
	r.cpu = time.Duration(after.Utime.Nano()+after.Stime.Nano()) - time.Duration(before.Utime.Nano()+before.Stime.Nano())
	r.sys = time.Duration(after.Stime.Nano() - before.Stime.Nano())
	return r, nil
}

func rusage() (syscall.Rusage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return ru, fmt.Errorf("getrusage: %w", err)
	}
	return ru, nil
}
