package ops

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Major page faults: a process short of memory.
//
// Under a memory limit too small for it the all-in-one is not killed: the
// kernel evicts the pages of mapped files — the engine library's code,
// 566 MB of it — and reads them back at the next touch, and everything
// slows until webhooks get 503 and reads 504, with nothing said about
// memory (README, "Before going live"). Each such read is a major page
// fault. Reading files (parts, the stream's blocks) is not one, so a
// process with enough memory counts almost none once started.

// MajorFaults is the process's major page faults so far.
func MajorFaults() (uint64, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	return majorFaults(string(b))
}

// majorFaults reads majflt, the 12th field of a /proc/PID/stat line. The
// 2nd, the command's name in parentheses, may hold spaces and
// parentheses itself: the fields are counted after its last ')'.
func majorFaults(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	// After the name: state (3rd) ppid pgrp session tty_nr tpgid flags
	// minflt cminflt majflt (12th).
	fields := strings.Fields(stat[i+1:])
	if len(fields) < 10 {
		return 0, errors.New("stat: too few fields")
	}
	return strconv.ParseUint(fields[9], 10, 64)
}

// majorFaultsCollector is otpscope_process_major_page_faults_total.
func majorFaultsCollector() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "otpscope_process_major_page_faults_total",
		Help: "Pages the kernel read back from disk for the process after evicting them (major page faults): steady near zero; hundreds a second mean the process is short of memory.",
	}, func() float64 {
		n, _ := MajorFaults()
		return float64(n)
	})
}
