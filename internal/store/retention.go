package store

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Retention is how long a group of tables keeps its rows, in whole days; 0
// keeps them forever. As a flag it reads "90d", "0" or a Go duration of whole
// days ("2160h"), up to MaxRetention.
type Retention time.Duration

const day = 24 * time.Hour

// Days is r in days.
func (r Retention) Days() int { return int(time.Duration(r) / day) }

// String writes r as "<days>d", or "0" for forever.
func (r Retention) String() string {
	if r == 0 {
		return "0"
	}
	return strconv.Itoa(r.Days()) + "d"
}

// MaxRetention is the longest retention but forever. A TTL is its
// column, as a DateTime, plus the retention, and ClickHouse's DateTime ends
// in 2106: past it the sum wraps into the past and the TTL drops every row
// at once. Ten years after the latest event time accepted (a day ahead,
// events.MaxClockSkew) stays within it until the 2090s; Date columns end
// later (2149).
const MaxRetention = Retention(3650 * day)

// tooLong is the refusal of a retention beyond MaxRetention.
func tooLong(what string) error {
	return fmt.Errorf("%s: want at most %s (ClickHouse's dates end in 2106), or 0 to keep forever", what, MaxRetention)
}

// Set parses "90d", "0" or a Go duration of whole days.
func (r *Retention) Set(s string) error {
	d, ok := ParseDuration(s)
	if !ok {
		return fmt.Errorf("retention %q: want days (90d) or a duration", s)
	}
	if d < 0 || d%day != 0 {
		return fmt.Errorf("retention %q: want whole days, 0 for forever", s)
	}
	if d > time.Duration(MaxRetention) {
		return tooLong(fmt.Sprintf("retention %q", s))
	}
	*r = Retention(d)
	return nil
}

// ParseDuration reads a Go duration (24h, 90m) or whole days (90d, of 24
// hours each): the retention flags' and the API's since and step. Days a
// Duration cannot hold are refused, not overflowed.
func ParseDuration(s string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 64)
		if err != nil || days > uint64(math.MaxInt64/int64(day)) {
			return 0, false
		}
		return time.Duration(days) * day, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// RetentionConfig is how long each group of tables keeps its rows. The
// groups follow what reads them: the facts (the console's events and OTP
// lookup, the poller's resend audit), the per-dispatch aggregates the live
// figures are computed from, the hourly rollups windows read, and the
// dead letters.
type RetentionConfig struct {
	// Events: delivery_events, otp_status, v1_events, resends, the
	// methods' silent_auth_outcomes, push_events and journey_links (by event
	// time), and the alerts fired on them (by evaluation).
	Events Retention
	// Attempts: channel_events and attempts (by day), what dirty hours
	// are computed from, and channel_deliveries, its DELIVERED facts.
	Attempts Retention
	// Rollups: the rollup tables (the hourly ones by hour, the old daily
	// ones by day) and the dirty marks. Keep them at least as long as
	// Attempts: an hour whose rollup expired first would be computed again.
	Rollups Retention
	// DeadLetters: dead_letters (by arrival) and dead_letter_replays (by replay).
	DeadLetters Retention
}

// DefaultDeadLetterRetention is the dead letters' retention of the schema.
const DefaultDeadLetterRetention = Retention(90 * day)

func (c *RetentionConfig) registerFlags(fs *flag.FlagSet) {
	c.DeadLetters = DefaultDeadLetterRetention
	fs.Var(&c.Events, "retention-events", "keep delivery events, OTP statuses, v1 events, resend decisions, silent-auth outcomes, push events and journey links this long by event time, and alerts by evaluation (90d, 2160h; at least 2d, at most 3650d; 0 = forever)")
	fs.Var(&c.Attempts, "retention-attempts", "keep the per-dispatch aggregates (channel_events, and its delivered facts channel_deliveries) this long by day, and a day more; windows over older days read the rollups (at least 2d, at most 3650d; 0 = forever)")
	fs.Var(&c.Rollups, "retention-rollups", "keep the rollups (hourly, the day-level histograms, the resend outcomes) this long; 0 or at least --retention-attempts (at most 3650d; 0 = forever)")
	fs.Var(&c.DeadLetters, "retention-dead-letters", "keep dead letters and their replay records this long (at most 3650d; 0 = forever)")
}

// Validate reports the first configuration error.
func (c *RetentionConfig) Validate() error {
	// Set bounds the flags; this, a RetentionConfig built in code.
	for _, f := range []struct {
		name string
		r    Retention
	}{{"retention-events", c.Events}, {"retention-attempts", c.Attempts}, {"retention-rollups", c.Rollups}, {"retention-dead-letters", c.DeadLetters}} {
		if f.r < 0 || f.r > MaxRetention {
			return tooLong(f.name + " " + f.r.String())
		}
	}
	for _, f := range []struct {
		name string
		r    Retention
	}{{"retention-events", c.Events}, {"retention-attempts", c.Attempts}} {
		if f.r != 0 && f.r < MinFactsRetention {
			return fmt.Errorf("%s %s: want at least %s, or 0 to keep forever: an hour's figures are computed from the facts of a day either side of it (MaxAttemptSpan), which a shorter retention deletes while the hour is still filling", f.name, f.r, MinFactsRetention)
		}
	}
	if c.Rollups != 0 && (c.Attempts == 0 || c.Rollups < c.Attempts) {
		return fmt.Errorf("retention-rollups %s is shorter than retention-attempts %s: days would be rolled up again after their rollup expired", c.Rollups, c.Attempts)
	}
	return nil
}

// MinFactsRetention is the shortest retention of the facts but forever:
// an hour is computed from the facts of MaxAttemptSpan either side of it.
const MinFactsRetention = Retention(2 * day)

// ttlTable is one table under a retention and the column its TTL counts from.
type ttlTable struct {
	name, column string
	date         bool // a Date column; else DateTime64
}

func (c *RetentionConfig) tables() map[ttlTable]Retention {
	out := map[ttlTable]Retention{}
	for _, t := range []ttlTable{{"delivery_events", "event_time", false}, {"otp_status", "observed_at", false}, {"v1_events", "created", false}, {"resends", "decided_at", false},
		{"silent_auth_outcomes", "started_at", false}, {"push_events", "created_at", false}, {"journey_links", "linked_at", false}, {"alerts", "evaluated_at", false}} {
		out[t] = c.Events
	}
	out[ttlTable{"channel_events", "day", true}] = c.Attempts
	out[ttlTable{"channel_deliveries", "day", true}] = c.Attempts
	for _, t := range []string{"rollup_dirty", "rolled_hours", "rolled_hour_checks", "hour_attempts", "hour_journeys", "hourly_attempts", "hourly_paths", "hourly_conversion", "hourly_latency", "hourly_latency_buckets",
		"day_latency", "day_latency_buckets", "rolled_day_histograms", "day_latency_total", "rolled_day_totals", "day_latency_lists", "rolled_day_lists"} {
		out[ttlTable{t, "hour", false}] = c.Rollups
	}
	// Like the hourly rollups, the resend outcomes outlive the facts.
	out[ttlTable{"resend_outcomes", "decided_at", false}] = c.Rollups
	out[ttlTable{"dead_letters", "received_at", false}] = c.DeadLetters
	out[ttlTable{"dead_letter_replays", "replayed_at", false}] = c.DeadLetters
	return out
}

// ttl is the TTL expression as ClickHouse writes it back in its metadata,
// so that a table already at its retention is left alone; "" is none.
func (t ttlTable) ttl(r Retention) string {
	if r == 0 {
		return ""
	}
	col, days := t.column, r.Days()
	if t.date {
		// A row of channel_events is dated by the earliest fact of its
		// insert: one more day keeps the later facts of the same attempt
		// (a day at most, MaxAttemptSpan) as long as their own retention.
		days += dateMargin
	} else {
		col = "toDateTime(" + col + ")"
	}
	return fmt.Sprintf("%s + toIntervalDay(%d)", col, days)
}

// dateMargin is the day a date-keyed table keeps beyond its retention.
const dateMargin = 1

// factsTables are the tables an hour's figures are computed from; their
// retention decides which rolled-up hours are frozen.
var factsTables = []ttlTable{{"channel_events", "day", true}, {"delivery_events", "event_time", false}, {"journey_links", "linked_at", false},
	{"otp_status", "observed_at", false}, {"silent_auth_outcomes", "started_at", false}, {"push_events", "created_at", false}}

var ttlDays = regexp.MustCompile(`toIntervalDay\((\d+)\)`)

// readFactsKept reads how long the tables an hour is computed from keep
// their facts, from their TTLs as the server holds them (whichever process
// set them): the shortest, 0 when none has one.
func (db *DB) readFactsKept(ctx context.Context) (time.Duration, error) {
	suffix := ""
	if db.cluster != "" {
		suffix = "_local"
	}
	date := map[string]bool{}
	var names []string
	for _, t := range factsTables {
		names = append(names, "'"+t.name+suffix+"'")
		date[t.name+suffix] = t.date
	}
	var kept time.Duration
	err := db.eachRow(ctx, "the facts' retention", "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN ("+strings.Join(names, ", ")+")", nil,
		func(rows driver.Rows) error {
			var name, engine string
			if err := rows.Scan(&name, &engine); err != nil {
				return err
			}
			m := ttlClause.FindStringSubmatch(engine)
			if m == nil {
				return nil
			}
			d := ttlDays.FindStringSubmatch(m[1])
			if d == nil {
				return nil
			}
			days, _ := strconv.Atoi(d[1])
			if date[name] {
				days -= dateMargin
			}
			if r := time.Duration(max(days, 0)) * day; kept == 0 || r < kept {
				kept = r
			}
			return nil
		})
	return kept, err
}

var ttlClause = regexp.MustCompile(` TTL (.+?)(?: SETTINGS |$)`)

// ApplyRetention sets each table's TTL to its retention where it differs,
// and returns the tables it altered. On a cluster it alters the *_local
// tables ON CLUSTER. Dropping rows past a shortened TTL is a background
// mutation, so this returns before they are gone.
func (db *DB) ApplyRetention(ctx context.Context, c RetentionConfig) ([]string, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	current := map[string]string{}
	suffix := ""
	if db.cluster != "" {
		suffix = "_local"
	}
	rows, err := db.conn.Query(ctx, "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()")
	if err != nil {
		return nil, fmt.Errorf("read table TTLs: %w", err)
	}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read table TTLs: %w", err)
		}
		current[name] = ""
		if m := ttlClause.FindStringSubmatch(engine); m != nil {
			current[name] = strings.TrimSpace(m[1])
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read table TTLs: %w", err)
	}
	var altered []string
	var errs []error
	for t, r := range c.tables() {
		name := t.name + suffix
		have, ok := current[name]
		want := t.ttl(r)
		if !ok || have == want {
			continue
		}
		target := db.localTarget(t.name)
		stmt := "ALTER TABLE " + target + " REMOVE TTL"
		if want != "" {
			stmt = "ALTER TABLE " + target + " MODIFY TTL " + want
		}
		if err := db.conn.Exec(ctx, stmt); err != nil {
			errs = append(errs, fmt.Errorf("retention of %s: %w", name, err))
			continue
		}
		altered = append(altered, name)
		db.logger.Info("retention applied", "table", name, "retention", r.String())
	}
	slices.Sort(altered)
	kept, err := db.readFactsKept(ctx)
	if err != nil {
		errs = append(errs, err)
	} else {
		db.factsKept = kept
	}
	return altered, errors.Join(errs...)
}
