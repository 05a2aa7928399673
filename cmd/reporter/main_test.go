package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/cli"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

func TestMain(m *testing.M) { chdbtest.Main(m) }

var noEnv []string

// TestReportReadsTheEmbeddedEndpointReadOnly runs `reporter report` the way
// an operator does next to a running reporter: as the endpoint's read-only
// default user, not its owner.
func TestReportReadsTheEmbeddedEndpointReadOnly(t *testing.T) {
	srv := chdbtest.Serve(t)
	db, err := store.Open(t.Context(), store.Config{DSN: srv.DSN + "/" + srv.Database}, brokertest.Logger(t)) // the owner migrates
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	dsn := "http://default@" + srv.Addr + "/" + srv.Database
	var out, errs bytes.Buffer
	code := cli.Main(reportCommand(&out), []string{"--clickhouse-dsn", dsn, "--from", "2026-06-01T00:00:00Z", "--to", "2026-06-02T00:00:00Z", "--format", "json"}, noEnv, io.Discard, &errs)
	if code != 0 {
		t.Fatalf("report exit code %d: %s", code, errs.String())
	}
	var rep reporter.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report output: %v\n%s", err, out.String())
	}
	if rep.Kind != reporter.KindAdHoc || rep.From.Format("2006-01-02") != "2026-06-01" || rep.Fallback.OTPs != 0 || rep.Fallback.FallbackRate != nil {
		t.Errorf("report = %+v; want an empty ad-hoc report of 2026-06-01", rep)
	}
}

func TestReportUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--format", "pdf"},
		{"--from", "yesterday"},
		{"--from", "2026-06-02T00:00:00Z", "--to", "2026-06-01T00:00:00Z"},
	} {
		var errs bytes.Buffer
		if code := cli.Main(reportCommand(io.Discard), args, noEnv, io.Discard, &errs); code != 2 || !strings.Contains(errs.String(), "reporter report") {
			t.Errorf("report %v = exit %d (%s); want 2", args, code, errs.String())
		}
	}
}

// TestReportFollowsClickHouseListen: without --clickhouse-dsn the report
// reads the endpoint OTPSCOPE_CLICKHOUSE_LISTEN names, the same variable the
// reporter it sits next to reads. (That endpoint wants a reader password, so
// its answer shows the report reached it.)
func TestReportFollowsClickHouseListen(t *testing.T) {
	srv := chdbtest.ServeConfig(t, chdb.HandlerConfig{ReaderPassword: "reader-password-0123456789"})
	env := []string{"OTPSCOPE_CLICKHOUSE_LISTEN=" + srv.Addr}
	var errs bytes.Buffer
	if code := cli.Main(reportCommand(io.Discard), []string{"--since", "1h"}, env, io.Discard, &errs); code != 1 || !strings.Contains(errs.String(), "Authentication failed") {
		t.Errorf("report with OTPSCOPE_CLICKHOUSE_LISTEN=%s = exit %d, %s; want that endpoint's refusal", srv.Addr, code, errs.String())
	}
}

// With nothing listening where the local engine should be, the report says
// so at once and how to point it elsewhere, instead of retrying the
// driver's connection for 15 s.
func TestReportWithoutALocalEngine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a port nothing listens on
	var errs bytes.Buffer
	code := cli.Main(reportCommand(io.Discard), []string{"--since", "1h", "--clickhouse-listen", addr}, noEnv, io.Discard, &errs)
	if code != 1 || !strings.Contains(errs.String(), "no ClickHouse endpoint at "+addr) || !strings.Contains(errs.String(), "--clickhouse-dsn") ||
		strings.Contains(errs.String(), "retrying") {
		t.Errorf("report with no engine at %s = exit %d:\n%s\nwant exit 1 at once, naming the address and the flags", addr, code, errs.String())
	}
}

// One environment file serves every binary: the report's variables are
// known to the others, which do not warn of them.
func TestReportEnvIsKnown(t *testing.T) {
	if unknown := app.UnknownEnv(reportCommand(io.Discard)); len(unknown) > 0 {
		t.Errorf("reporter report reads %v, which other binaries would warn of", unknown)
	}
}
