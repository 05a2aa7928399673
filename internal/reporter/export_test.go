package reporter

// HumanMS is how the HTML report writes a percentile of the time to deliver.
var HumanMS = humanMS

// SetReplayPage makes Replay read n dead letters at a time for t.
func SetReplayPage(t interface{ Cleanup(func()) }, n int) {
	prev := replayPage
	replayPage = n
	t.Cleanup(func() { replayPage = prev })
}
