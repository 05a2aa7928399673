package reporter

// HumanMS is how the HTML report writes a percentile of the time to deliver.
var HumanMS = humanMS
