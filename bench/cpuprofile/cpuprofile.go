// Package cpuprofile writes the CPU profile the benchmarks take with -cpuprofile.
package cpuprofile

import (
	"os"
	"runtime/pprof"
)

// Start profiles the CPU into the file path until stop is called; with an
// empty path it profiles nothing and stop does nothing.
func Start(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
