package reporter

import (
	"time"

	"github.com/otpscope/otpscope/internal/cronspec"
)

// HumanMS is how the HTML report writes a percentile of the time to deliver.
var HumanMS = humanMS

// SetReplayPage makes Replay read n dead letters at a time for t.
func SetReplayPage(t interface{ Cleanup(func()) }, n int) {
	prev := replayPage
	replayPage = n
	t.Cleanup(func() { replayPage = prev })
}

// SetRunTimeout cuts the scheduled runs of kind short after d for t.
func SetRunTimeout(t interface{ Cleanup(func()) }, kind string, d time.Duration) {
	prev := runTimeouts[kind]
	runTimeouts[kind] = d
	t.Cleanup(func() { runTimeouts[kind] = prev })
}

// LongestInterval is longestInterval of spec from now.
func LongestInterval(spec string, now time.Time) time.Duration {
	sched, err := cronspec.Parse(spec)
	if err != nil {
		panic(err)
	}
	return longestInterval(sched, now)
}
