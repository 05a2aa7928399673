package reporter

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/store"
)

// DefaultReportDSN is the embedded engine's endpoint of a reporter running on
// this machine with the default --clickhouse-listen, as a read-only client.
const DefaultReportDSN = "http://default@" + store.DefaultListen

// ReportCLIConfig configures `reporter report`, an ad-hoc report.
type ReportCLIConfig struct {
	DSN string
	// Listen is the embedded endpoint read without DSN: the reporter's
	// --clickhouse-listen (so OTPSCOPE_CLICKHOUSE_LISTEN set for both
	// points the report at the reporter).
	Listen   string
	From, To string // RFC 3339; default the last 24 hours
	Since    string // a duration: the window ending now (not with From or To)
	Profile  string
	Channel  string
	Format   string
	// TZ is the IANA time zone of the trend's buckets, of the window as
	// the table and HTML forms show it beside UTC, and of their other
	// times; "" is UTC.
	TZ string
	// Out is the file written; "" or "-" writes to stdout.
	Out string
	// Thresholds are marked on the HTML report's charts; MaxLatencyP95
	// gives Thresholds.MaxLatencyP95MS.
	Thresholds    Thresholds
	MaxLatencyP95 time.Duration
	// Objective, when set, is what the report holds the journeys to, as
	// the reporter's summaries do.
	Objective Objective
}

// RegisterFlags registers the report command's flags.
func (c *ReportCLIConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DSN, "clickhouse-dsn", "", "ClickHouse to read (clickhouse://… or http://…); empty reads a local reporter's embedded engine on --clickhouse-listen")
	fs.StringVar(&c.Listen, "clickhouse-listen", store.DefaultListen, "the local reporter's embedded ClickHouse endpoint, read as http://default@ADDR when --clickhouse-dsn is empty")
	fs.StringVar(&c.From, "from", "", "window start, RFC 3339 (inclusive); default 24 h before --to")
	fs.StringVar(&c.To, "to", "", "window end, RFC 3339 (exclusive); default now")
	fs.StringVar(&c.Since, "since", "", "the window ending now, e.g. 7d, 24h or 90m (instead of --from/--to)")
	// A window on the command line replaces the environment's whole: a
	// scheduled job's OTPSCOPE_SINCE does not clash with a --from typed by hand.
	flagenv.OneSetting(fs, "from", "to", "since")
	fs.StringVar(&c.Profile, "profile", "", "only this tyntec profile ID")
	fs.StringVar(&c.Channel, "channel", "", "only this channel (journeys: whose primary channel it is)")
	fs.StringVar(&c.Format, "format", "table", "table, json, csv or html")
	fs.StringVar(&c.TZ, "tz", "UTC", "time zone (an IANA name such as Europe/Berlin) of the trend's buckets, a day from local midnight, of the window shown beside UTC, and of the table's and HTML's other times")
	fs.StringVar(&c.Out, "out", "-", "file to write; - for stdout")
	fs.Float64Var(&c.Thresholds.MinDeliveryRate, "alert-min-delivery-rate", DefaultMinDeliveryRate, "delivery-rate alert threshold the HTML charts mark (0: none)")
	fs.Float64Var(&c.Thresholds.MaxFallbackRate, "alert-max-fallback-rate", DefaultMaxFallbackRate, "fallback-rate alert threshold the HTML charts mark (0: none)")
	c.Objective.RegisterFlags(fs)
	fs.DurationVar(&c.MaxLatencyP95, "alert-max-latency-p95", DefaultMaxLatencyP95, "latency alert threshold (a channel's p95 latency, dispatch to DELIVERED; not the journeys' time to deliver) the HTML charts mark (0: none)")
}

// Window parses the window flags at now.
func (c *ReportCLIConfig) Window(now time.Time) (store.Window, error) {
	q := url.Values{}
	for k, v := range map[string]string{"from": c.From, "to": c.To, "since": c.Since, "profile": c.Profile, "channel": c.Channel} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return ParseWindow(q, now)
}

// Validate reports the first configuration error.
func (c *ReportCLIConfig) Validate() error {
	if !slices.Contains(Formats, c.Format) {
		return fmt.Errorf("format %q: want one of %s", c.Format, strings.Join(Formats, ", "))
	}
	if c.DSN != "" {
		if err := store.CheckDSN(c.DSN); err != nil {
			return err
		}
	}
	for name, r := range map[string]float64{"alert-min-delivery-rate": c.Thresholds.MinDeliveryRate, "alert-max-fallback-rate": c.Thresholds.MaxFallbackRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("%s %v: want a rate within 0..1", name, r)
		}
	}
	if c.MaxLatencyP95 < 0 {
		return fmt.Errorf("alert-max-latency-p95 %v is negative", c.MaxLatencyP95)
	}
	if err := c.Objective.Validate(); err != nil {
		return err
	}
	if _, err := store.Zone(c.TZ); err != nil {
		return fmt.Errorf("tz: %w", err)
	}
	_, err := c.Window(time.Now())
	return err
}

// WriteReport builds the ad-hoc report over db and renders it to out.
func WriteReport(ctx context.Context, db Analytics, cfg ReportCLIConfig, now time.Time, out io.Writer) error {
	w, err := cfg.Window(now)
	if err != nil {
		return err
	}
	zone, err := store.Zone(cfg.TZ)
	if err != nil {
		return fmt.Errorf("tz: %w", err)
	}
	rep, err := BuildReport(ctx, db, KindAdHoc, w, zone, now)
	if err != nil {
		return err
	}
	rep.Thresholds = cfg.Thresholds
	rep.Thresholds.MaxLatencyP95MS = float64(cfg.MaxLatencyP95.Milliseconds())
	if err := rep.holdTo(ctx, db, w, cfg.Objective); err != nil {
		return err
	}
	return rep.Render(out, cfg.Format)
}

// RunReport connects to ClickHouse (without migrating: it only reads, and the
// embedded endpoint is read-only to it) and writes the report.
func RunReport(ctx context.Context, cfg ReportCLIConfig, stdout io.Writer, logger *slog.Logger) error {
	dsn := cfg.DSN
	if dsn == "" {
		// The local engine is a running reporter's or all-in-one's: when
		// nothing listens there, say so at once instead of retrying.
		addr := cmp.Or(cfg.Listen, store.DefaultListen)
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return fmt.Errorf("no ClickHouse endpoint at %s (%w): is a reporter or otpscope running on this machine? Point --clickhouse-listen (or OTPSCOPE_CLICKHOUSE_LISTEN) at its endpoint, or --clickhouse-dsn at a ClickHouse server", addr, err)
		}
		conn.Close()
		dsn = "http://default@" + addr
	}
	openCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	db, err := store.ConnectReader(openCtx, dsn, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	out := stdout
	var f *os.File
	if cfg.Out != "" && cfg.Out != "-" {
		if f, err = os.Create(cfg.Out); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		out = f
	}
	err = WriteReport(ctx, db, cfg, time.Now(), out)
	if f != nil {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("report: %w", cerr)
		}
	}
	return err
}
