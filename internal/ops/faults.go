package ops

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
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
	p, err := procfs.Self()
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return uint64(st.MajFlt), nil
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
