package reporter

import (
	"context"
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

// RunJob runs r's scheduled job of kind as its schedule would at now, and
// gives the schedule it runs on; ok is false when r schedules no such job.
func RunJob(ctx context.Context, r *Reports, kind string, now time.Time) (spec string, ok bool, err error) {
	for _, j := range r.jobs() {
		if j.kind == kind {
			return j.spec, true, j.run(ctx, now)
		}
	}
	return "", false, nil
}

// LastHour is the hourly summary's window at now in zone.
var LastHour = lastHour

// LastWeek is the weekly summary's window at now in zone.
var LastWeek = lastWeek

// SetNow makes a answer as if now returned the time.
func (a *API) SetNow(now func() time.Time) *API {
	a.now = now
	return a
}

// SLOSays is /api/v1/slo's words for an objective whose budget allows
// allowed failures, the SLO window's figures f.
func SLOSays(objective, allowed float64, f SLOFigures) string {
	o := Objective{DeliveryRate: objective}
	r := SLOResponse{Objective: &objective, SLOFigures: f, Budget: &SLOBudget{FailuresAllowed: allowed, Remaining: 0.5}}
	return o.says(r)
}
