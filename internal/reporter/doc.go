// Package reporter reads the ClickHouse store for people: the analytics API
// (/api/v1), the scheduled hourly and daily summaries, the alert rules, the
// rollup job, and `reporter report`. Its Service is the reporter binary: the
// sink (package sink) and these, on one listener, over one store.
package reporter
