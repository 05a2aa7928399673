// Package reporter is everything that writes or reads ClickHouse: the sink
// consumer that moves events from NATS into ClickHouse, and (later) the
// analytics API, reports and alerts. Without a --clickhouse-dsn it hosts the
// embedded ClickHouse engine and serves its HTTP endpoint.
package reporter
