package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/events"
)

// The analytics queries: attempts (one per dispatch) and journeys as
// docs/analytics.md defines them. Every figure is computed from each
// channel's set of distinct facts (channel_events), so a delivery fact stored
// twice never counts twice, and events are placed by their own timestamp,
// whatever order they arrived in.

// ErrNotFound is returned by Journey for an OTP with no stored event.
var ErrNotFound = errors.New("not found")

// MaxAttemptSpan is how far apart an attempt's (and a journey's) events may
// lie for the windowed queries to be exact: a query for [From, To) reads the
// events of [From−MaxAttemptSpan, To+MaxAttemptSpan) and keeps what starts in
// the window. tyntec settles an attempt within its channel timeout (minutes).
// It is events.MaxAttemptSpan, which ingest holds method reports to.
const MaxAttemptSpan = events.MaxAttemptSpan

// Window selects attempts and journeys by their earliest event time.
type Window struct {
	From, To time.Time // From inclusive, To exclusive
	// Profile keeps attempts and journeys of one tyntec profile ID; "" keeps all.
	Profile string
	// Channel keeps attempts on one channel, and journeys whose primary
	// channel it is; "" keeps all.
	Channel string
	// Raw computes from delivery_events instead of the attempts aggregate and
	// the hourly rollups (they must agree; tests and benchmarks compare them).
	Raw bool
	// MaxLag lets an hour that is dirty (facts stored since the rollup job
	// last computed or checked it) be read as the job left it, without
	// those facts, when the job did so at most MaxLag ago: an answer up to
	// MaxLag behind, without patching's cost (docs/analytics.md, "Bounded
	// lag"; AsOf says how far behind). Zero: exact as of the read.
	MaxLag time.Duration
	// spans, when set, replace [From, To) by these disjoint intervals (the
	// live parts of a window read mostly from the hourly rollups).
	spans []span
	// stored, when set, reads the attempts and journeys of these rolled-up
	// hours (hour_attempts, hour_journeys) instead of computing them: the
	// partial hours at a window's ends.
	stored []rolledHour
	// patched marks stored hours that are dirty since their versions: their
	// stored rows are read but those of the OTPs touched since (touchedSQL),
	// which are computed live from their own facts (see patch).
	patched bool
	// otps, when set, is the set of the only OTPs (and method attempts)
	// whose facts a live window reads, as the right side of IN: a subquery
	// in parentheses or an alias (see touchedSet).
	otps string
	// touched, when set, lists the OTPs touched since a patched window's
	// versions, comma-separated (see touchedList), in place of touchedSQL.
	touched string
	// factDays, when set, is a patched window's condition on the days of
	// channel_events that hold its touched OTPs' facts (see
	// changedHours), for its live side.
	factDays string
}

type span struct{ from, to time.Time }

// intervals are the window's time intervals.
func (w Window) intervals() []span {
	if len(w.spans) > 0 {
		return w.spans
	}
	return []span{{w.From, w.To}}
}

// Percentiles are exact (quantileExact) percentiles in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
}

// ErrorCount is how many failed attempts carried an error code.
type ErrorCount struct {
	Code  string `json:"code"`
	Count uint64 `json:"count"`
}

// Conversion is the verification conversion of OTPs delivered on a channel:
// of the delivered OTPs whose final status was polled, the share VERIFIED.
// When the poller samples (SampleRate < 1) the rate is estimated from the
// sample; the counts are the sample's.
type Conversion struct {
	Polled     uint64   `json:"polled"`
	Verified   uint64   `json:"verified"`
	Rate       *float64 `json:"rate"`
	SampleRate float64  `json:"sample_rate"`
}

// ChannelStats are one channel's attempts (dispatches) in a window.
type ChannelStats struct {
	Channel   string `json:"channel"`
	Attempts  uint64 `json:"attempts"`
	Delivered uint64 `json:"delivered"`
	// Failed is Undeliverable + TimedOut: attempts that settled without a
	// DELIVERED, by the status of their first failure.
	Failed        uint64       `json:"failed"`
	Undeliverable uint64       `json:"undeliverable"`
	TimedOut      uint64       `json:"timed_out"`
	Pending       uint64       `json:"pending"`
	DeliveryRate  *float64     `json:"delivery_rate"`
	LatencyMS     *Percentiles `json:"latency_ms"`
	Errors        []ErrorCount `json:"errors"`
	// UnknownStatus counts attempts with a status tyntec did not document.
	UnknownStatus uint64 `json:"unknown_status"`
	// RecoveredByPolling counts attempts with a fact no webhook reported.
	RecoveredByPolling uint64 `json:"recovered_by_polling"`
	// Unrecoverable counts attempts whose lost webhooks the poller could not
	// recover (tyntec's v1 API does not serve v4 OTPs), by the attempt's
	// dispatch; they stay pending, never invented.
	Unrecoverable uint64      `json:"unrecoverable"`
	Verification  *Conversion `json:"verification"`
}

// Outcomes split journeys by how they ended.
type Outcomes struct {
	DeliveredPrimary  uint64 `json:"delivered_primary"`
	DeliveredFallback uint64 `json:"delivered_fallback"`
	Failed            uint64 `json:"failed"`
	Pending           uint64 `json:"pending"`
}

// PathStats are the journeys that took one path.
type PathStats struct {
	Path      string `json:"path"`
	OTPs      uint64 `json:"otps"`
	Delivered uint64 `json:"delivered"`
	// Failed are the journeys every attempt of which failed, Pending those
	// not settled yet; DeliveryRate is delivered / (delivered + failed),
	// null when none settled: a pending journey is no failure.
	Failed       uint64   `json:"failed"`
	Pending      uint64   `json:"pending"`
	DeliveryRate *float64 `json:"delivery_rate"`
}

func newPathStats(path string, otps, delivered, failed, pending uint64) PathStats {
	return PathStats{Path: path, OTPs: otps, Delivered: delivered, Failed: failed, Pending: pending, DeliveryRate: rate(delivered, delivered+failed)}
}

// String is the path's row in words, its rate a value (not a pointer).
func (p PathStats) String() string {
	r := "null"
	if p.DeliveryRate != nil {
		r = strconv.FormatFloat(*p.DeliveryRate, 'g', -1, 64)
	}
	return fmt.Sprintf("%s: %d journeys, %d delivered, %d failed, %d pending, rate %s", p.Path, p.OTPs, p.Delivered, p.Failed, p.Pending, r)
}

// FallbackStats are the journeys in a window.
type FallbackStats struct {
	OTPs         uint64   `json:"otps"`
	FallbackOTPs uint64   `json:"fallback_otps"`
	FallbackRate *float64 `json:"fallback_rate"`
	// Resends are the attempts beyond the first on the same channel, summed
	// over the journeys (a resend is not a fallback).
	Resends         uint64       `json:"resends"`
	Outcomes        Outcomes     `json:"outcomes"`
	Paths           []PathStats  `json:"paths"`
	TimeToDeliverMS *Percentiles `json:"time_to_deliver_ms"`
}

// Journey outcomes.
const (
	OutcomeDeliveredPrimary  = "delivered_primary"
	OutcomeDeliveredFallback = "delivered_fallback"
	OutcomeFailed            = "failed"
	OutcomePending           = "pending"
)

// Attempt outcomes.
const (
	AttemptDelivered = "delivered"
	AttemptFailed    = "failed"
	AttemptPending   = "pending"
)

// attemptCols are the columns every attempt subquery yields.
const attemptCols = "otp_id, channel, a_no, a_profile, a_first, a_dispatched, a_delivered, a_failed, a_fail_status, a_err, a_unknown, a_polled"

// msTime renders t as a DateTime64(3) literal.
func msTime(t time.Time) string {
	return fmt.Sprintf("fromUnixTimestamp64Milli(toInt64(%d), 'UTC')", t.UnixMilli())
}

// eventTupleSQL is one fact of a channel as channel_events stores it
// (schema/0005_dispatches.sql): (event_time, rank, status, error_code,
// unknown, polled). rank puts DISPATCHED first and settling statuses last
// among facts of the same millisecond.
const eventTupleSQL = `(event_time,
        toUInt8(multiIf(status = 'DISPATCHED', 0, status IN ('DELIVERED', 'UNDELIVERABLE', 'TIMED_OUT'), 2, 1)),
        toString(status), toString(error_code), toUInt8(unknown_status), toUInt8(source = 'poll'))`

// silentFactsSQL and pushFactsSQL are the method attempts' facts as
// channel_events holds them, read from their raw tables (Window.Raw): the
// same mapping as the views of schema/0010_methods.sql, which tests hold
// equal to these.
const (
	silentFactsSQL = `SELECT attempt_uuid AS otp_id, 'SILENT' AS channel, toString(profile_id) AS c_profile,
        [(started_at, toUInt8(0), 'DISPATCHED', '', toUInt8(0), toUInt8(0)),
         (finished_at, toUInt8(if(result IN ('verified', 'not_verified', 'error'), 2, 1)),
          multiIf(result = 'verified', 'DELIVERED', result IN ('not_verified', 'error'), 'UNDELIVERABLE', upper(toString(result))),
          multiIf(result = 'error', toString(error), result = 'not_verified', 'not_verified', ''),
          toUInt8(unknown_result), toUInt8(0))] AS f_evs
    FROM silent_auth_outcomes`
	pushFactsSQL = `SELECT attempt_uuid AS otp_id, 'PUSH' AS channel, '' AS c_profile,
        arrayFilter(e -> e.3 != 'PENDING',
            [(created_at, toUInt8(0), 'DISPATCHED', '', toUInt8(0), toUInt8(0)),
             (updated_at, toUInt8(if(status IN ('approved', 'denied', 'expired'), 2, 1)),
              multiIf(status = 'approved', 'DELIVERED', status = 'denied', 'UNDELIVERABLE', status = 'expired', 'TIMED_OUT', upper(toString(status))),
              if(status IN ('denied', 'expired'), toString(status), ''),
              toUInt8(unknown_status), toUInt8(source = 'poll'))]) AS f_evs
    FROM push_events`
)

// dispatchSplitSQL turns one row per (otp_id, channel) with evs, the
// channel's distinct facts sorted by (event_time, rank, …), into one row per
// attempt (attemptCols). A DISPATCHED opens a new attempt when the last
// DISPATCHED or settling fact before it is a settling one (DELIVERED,
// UNDELIVERABLE, TIMED_OUT); every other fact belongs to the attempt open at
// its time. Because evs is a sorted set, duplicates and arrival order cannot
// change the split.
//
// An attempt's facts are consecutive in evs, so arraySplit cuts evs before
// each fact that opens one, and the attempt's fields are read from its
// columns of facts (aev.1 the times, aev.3 the statuses) with indexOf and
// has rather than lambdas over the facts' tuples: the same attempts (at 111 M
// events, a day's 560 k of them hash alike both ways) in 10-25 % less time,
// and the rollup job's 49 hours in 5.3-5.4 s instead of 5.6-6.3.
const dispatchSplitSQL = `SELECT otp_id, channel, toUInt32(a_no) AS a_no, c_profile AS a_profile,
    aev.1 AS ts, aev.3 AS st,
    ts[1] AS a_first,
    if(has(st, 'DISPATCHED'), ts[indexOf(st, 'DISPATCHED')], NULL) AS a_dispatched,
    if(has(st, 'DELIVERED'), ts[indexOf(st, 'DELIVERED')], NULL) AS a_delivered,
    arrayFirstIndex(s -> s IN ('UNDELIVERABLE', 'TIMED_OUT'), st) AS fi,
    if(fi > 0, ts[fi], NULL) AS a_failed,
    if(fi > 0, st[fi], '') AS a_fail_status,
    arrayReduce('max', arrayFilter((c, s) -> s IN ('UNDELIVERABLE', 'TIMED_OUT'), aev.4, st)) AS a_err,
    arrayMax(aev.5) AS a_unknown,
    arrayMax(aev.6) AS a_polled
FROM (
    SELECT otp_id, channel, c_profile,
        arraySplit((e, opens) -> opens, evs, arrayMap((r, prev) -> toUInt8(r = 0 AND prev = 2), evs.2,
            arrayPushFront(arrayPopBack(arrayFill(k -> k != 1, evs.2)), toUInt8(1)))) AS parts
    FROM (%s)
)
ARRAY JOIN parts AS aev, arrayEnumerate(parts) AS a_no`

// attemptsSQL is a subquery of one row per attempt (attemptCols): one
// dispatch of an OTP on a channel. It reads the facts of [from−span,
// to+span) of every interval (none: all); where filters the channels' rows
// (e.g. by otp_id) and having the attempts.
func attemptsSQL(raw bool, ivs []span, where, having string) string {
	ranges := func(one func(from, to time.Time) string) string {
		if len(ivs) == 0 {
			return "\nWHERE 1"
		}
		if len(ivs) == 1 {
			return "\nWHERE " + one(ivs[0].from, ivs[0].to)
		}
		var parts []string
		for _, iv := range ivs {
			parts = append(parts, "("+one(iv.from, iv.to)+")")
		}
		return "\nWHERE (" + strings.Join(parts, " OR ") + ")"
	}
	var b strings.Builder
	if raw {
		around := func(col string) string {
			return ranges(func(from, to time.Time) string {
				return fmt.Sprintf("%s >= %s AND %s < %s", col, msTime(from.Add(-MaxAttemptSpan)), col, msTime(to.Add(MaxAttemptSpan)))
			})
		}
		b.WriteString(`SELECT otp_id, channel, max(c_profile) AS c_profile, arraySort(groupUniqArrayArray(f_evs)) AS evs
FROM (
    SELECT otp_id, toString(channel) AS channel, toString(profile_id) AS c_profile, [` + eventTupleSQL + `] AS f_evs
    FROM delivery_events` + around("event_time") + `
    UNION ALL
    ` + silentFactsSQL + around("started_at") + `
    UNION ALL
    ` + pushFactsSQL + around("created_at") + `
)
WHERE 1`)
	} else {
		b.WriteString(`SELECT otp_id, channel, max(profile_id) AS c_profile,
    arraySort(groupUniqArrayArray(events)) AS evs
FROM channel_events`)
		b.WriteString(ranges(func(from, to time.Time) string {
			return fmt.Sprintf("day >= toDate(%s) AND day <= toDate(%s)", msTime(from.Add(-MaxAttemptSpan)), msTime(to.Add(MaxAttemptSpan)))
		}))
	}
	if where != "" {
		b.WriteString(" AND " + where)
	}
	b.WriteString("\nGROUP BY otp_id, channel")
	q := fmt.Sprintf("SELECT "+attemptCols+" FROM (\n"+dispatchSplitSQL+"\n)", b.String())
	if having != "" {
		q += "\nWHERE " + having
	}
	return q
}

func (w Window) check() error {
	if w.From.IsZero() || w.To.IsZero() {
		return errors.New("window needs from and to")
	}
	if w.From.After(w.To) {
		return fmt.Errorf("window from %s is after to %s", w.From.Format(time.RFC3339), w.To.Format(time.RFC3339))
	}
	return nil
}

func (w Window) inWindow(col string) string {
	ivs := w.intervals()
	if len(ivs) == 1 {
		return fmt.Sprintf("%s >= %s AND %s < %s", col, msTime(ivs[0].from), col, msTime(ivs[0].to))
	}
	var parts []string
	for _, iv := range ivs {
		parts = append(parts, fmt.Sprintf("(%s >= %s AND %s < %s)", col, msTime(iv.from), col, msTime(iv.to)))
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// attemptCountsSQL counts channelAttemptsSQL's rows by outcome; the channel
// report and its per-day rollup rows count alike.
const attemptCountsSQL = `    count() AS attempts,
    countIf(a_delivered IS NOT NULL) AS delivered,
    countIf(a_delivered IS NULL AND a_failed IS NOT NULL) AS failed,
    countIf(a_delivered IS NULL AND a_fail_status = 'UNDELIVERABLE') AS undeliverable,
    countIf(a_delivered IS NULL AND a_fail_status = 'TIMED_OUT') AS timed_out,
    countIf(a_unknown = 1) AS unknown,
    countIf(a_polled = 1) AS polled,
    countIf(a_delivered IS NOT NULL AND a_dispatched IS NOT NULL) AS lat_n,
    minOrNullIf(a_first, ` + pendingSQL + `) AS pending_first,`

// pendingSQL selects the attempts that have not settled (Completeness).
const pendingSQL = "a_delivered IS NULL AND a_failed IS NULL"

// journeyCountsSQL counts journeysSQL's rows by outcome; the fallback report
// and its per-day rollup rows count alike.
const journeyCountsSQL = `    count() AS otps,
    countIf(n > 1) AS fallback,
    sum(resends) AS resends,
    countIf(outcome = 'delivered_primary') AS o_primary,
    countIf(outcome = 'delivered_fallback') AS o_fallback,
    countIf(outcome = 'failed') AS o_failed,
    countIf(outcome = 'pending') AS o_pending,
    countIf(j_delivered IS NOT NULL) AS delivered,`

// filter is the HAVING condition of w's window on the column first, with w's
// profile and channel filters on profile and channel; args bind it.
func (w Window) filter(first, profile, channel string) (string, []any) {
	having := w.inWindow(first)
	if len(w.stored) > 0 {
		having = w.storedSQL(first)
	}
	var args []any
	if w.Profile != "" {
		having += " AND " + profile + " = ?"
		args = append(args, w.Profile)
	}
	if w.Channel != "" {
		having += " AND " + channel + " = ?"
		args = append(args, w.Channel)
	}
	return having, args
}

// channelAttemptsSQL is the subquery of the window's attempts (one row per
// attempt, with a_outcome), filtered by profile and channel; args bind its
// placeholders. Dashboards use the same definitions.
func (w Window) channelAttemptsSQL() (string, []any) {
	if w.patched {
		return w.patch(attemptCols, Window.channelAttemptsSQL)
	}
	having, args := w.filter("a_first", "a_profile", "channel")
	if len(w.stored) > 0 {
		return "SELECT " + attemptCols + " FROM hour_attempts WHERE " + having, args
	}
	return attemptsSQL(w.Raw, w.intervals(), w.factsWhere(), having), args
}

// otpsWhere restricts the facts a live window reads to w.otps.
func (w Window) otpsWhere() string {
	if w.otps == "" {
		return ""
	}
	return "otp_id IN " + w.otps
}

// factsWhere is otpsWhere for channel_events, with w.factDays.
func (w Window) factsWhere() string {
	if w.factDays == "" || w.otps == "" || w.Raw {
		return w.otpsWhere()
	}
	return w.otpsWhere() + " AND " + w.factDays
}

// patch is sql over a patched window: the stored rows of its hours but
// those of the OTPs touched since their versions, and those OTPs' rows
// computed live, from all their facts, as a live window would. Rows are
// attempts or journeys; a journey row's otp_id is one of its OTPs, and the
// touched set holds every OTP of a touched journey, so each attempt and
// journey comes from exactly one side.
func (w Window) patch(cols string, sql func(Window) (string, []any)) (string, []any) {
	touched, with := w.touchedSet()
	stored := w
	stored.patched = false
	sq, sargs := sql(stored)
	live := w
	live.patched, live.stored, live.otps, live.factDays = false, nil, touched, w.factDays
	lq, largs := sql(live)
	return with + fmt.Sprintf("SELECT %[1]s FROM (%[2]s) WHERE otp_id NOT IN %[3]s\nUNION ALL\nSELECT %[1]s FROM (%[4]s)", cols, sq, touched, lq), append(sargs, largs...)
}

// touchedSQL is a subquery of the OTPs whose stored rows in w's hours may be
// stale: every OTP (or method attempt) with a fact inserted since the
// oldest time the hours are known exact from (asOf: their versions or later
// checks, less the slack; rollup_touched, schema 0012), and every OTP of
// the journeys those belong to, now or at that version — the journeys of
// their links and their own — whose journey is now one of those. So the
// set is closed: a journey has all its OTPs in it or none.
//
// limit, when not 0, reads at most that many rows of rollup_touched: the
// set is then complete only if there were no more (see touchedList).
func (w Window) touchedSQL(limit int) string {
	u := w.touchedMarksSQL(limit)
	keys := fmt.Sprintf("SELECT toString(otp_id) FROM (%[1]s) UNION ALL SELECT journey_id FROM journey_links WHERE otp_id IN (%[1]s)", u)
	cands := fmt.Sprintf("SELECT otp_id FROM (%[1]s) UNION ALL SELECT otp_id FROM journey_links WHERE journey_id IN (%[2]s) UNION ALL SELECT toUUIDOrZero(k) FROM (%[2]s) AS kk(k)", u, keys)
	// An OTP's journey as journeyKeyedSQL keys it: its link by linkRank, else itself.
	return fmt.Sprintf(`SELECT c.otp_id FROM (SELECT DISTINCT otp_id FROM (%[1]s)) AS c
LEFT JOIN (
    SELECT otp_id, argMin(journey_id, `+linkRank+`) AS l_journey
    FROM journey_links WHERE otp_id IN (%[1]s) GROUP BY otp_id
) AS l ON c.otp_id = l.otp_id
WHERE if(l.l_journey = '', toString(c.otp_id), l.l_journey) IN (%[2]s)`, cands, keys)
}

// touchedMarksSQL selects the OTPs of w's touched rows (touchedRows);
// limit, when not 0, reads at most that many rows, the oldest: rows an
// insert added after touchedList counted them are the ones left out, as if
// the set had been read a moment earlier.
func (w Window) touchedMarksSQL(limit int) string {
	q := "SELECT otp_id FROM " + w.touchedRows()
	if limit > 0 {
		q += fmt.Sprintf(" ORDER BY inserted_at LIMIT %d", limit)
	}
	return q
}

// touchedRows are the rows of rollup_touched inserted since the oldest
// time w's stored hours are known exact from (asOf), as a FROM clause.
func (w Window) touchedRows() string {
	oldest := w.stored[0].asOf
	for _, h := range w.stored {
		oldest = min(oldest, h.asOf)
	}
	since := time.UnixMilli(int64(oldest))
	return "rollup_touched WHERE inserted_at >= " + msTime(since)
}

// journeyCols are the columns every journey subquery yields.
const journeyCols = "otp_id, j_profile, j_first, j_delivered, j_timed, j_delivered_channel, j_primary, path, n, resends, outcome"

// journeysSQL is a subquery of one row per journey in the window
// (journeyCols): otp_id (the OTP or method attempt that delivered first,
// else the first: the one whose polled status is the journey's), j_profile,
// j_first, j_delivered, j_timed (whether its time to deliver is known:
// ttdKnownSQL), j_delivered_channel, j_primary (the first channel),
// path (the distinct channels in order of first attempt), n (how many
// channels), resends (attempts beyond the first on a channel), outcome.
// Live, the journey is grouped from its attempts here, by the key
// journeyKeyedSQL gives each attempt: the one place that says which attempts
// form a journey, for live answers and rollups alike.
func (w Window) journeysSQL() (string, []any) {
	if w.patched {
		return w.patch(journeyCols, Window.journeysSQL)
	}
	if len(w.stored) > 0 {
		having, args := w.filter("j_first", "j_profile", "j_primary")
		return "SELECT " + journeyCols + " FROM hour_journeys WHERE " + having, args
	}
	having, args := w.filter("j_first", "j_profile", "atts[1].2")
	q := fmt.Sprintf(`SELECT j_otp AS otp_id, j_profile, j_first, j_delivered,
    toUInt8(if(j_delivered IS NOT NULL AND (j_delivered > j_first OR ifNull(j_dispatched = j_first, false)), 1, 2)) AS j_timed,
    j_delivered_channel, toString(atts[1].2) AS j_primary,
    arrayDistinct(arrayMap(x -> x.2, atts)) AS chans,
    length(chans) AS n,
    toUInt64(length(atts) - n) AS resends,
    arrayStringConcat(chans, '>') AS path,
    multiIf(j_delivered IS NOT NULL AND j_delivered_channel = atts[1].2, 'delivered_primary',
            j_delivered IS NOT NULL, 'delivered_fallback',
            arrayAll(x -> x.4 = 1, atts), 'failed',
            'pending') AS outcome
FROM (
    SELECT journey,
        if(countIf(a_delivered IS NOT NULL) > 0, argMinIf(otp_id, `+firstDeliveredKey+`, a_delivered IS NOT NULL), argMin(otp_id, (a_first, otp_id))) AS j_otp,
        max(a_profile) AS j_profile,
        min(a_first) AS j_first,
        min(a_delivered) AS j_delivered,
        min(a_dispatched) AS j_dispatched,
        argMinIf(channel, `+firstDeliveredKey+`, a_delivered IS NOT NULL) AS j_delivered_channel,
        arraySort(groupArray((a_first, toString(channel),
            toUInt8(a_delivered IS NOT NULL),
            toUInt8(a_delivered IS NULL AND a_failed IS NOT NULL), a_no))) AS atts
    FROM (%s)
    GROUP BY journey
    HAVING %s
)`, journeyKeyedSQL(attemptsSQL(w.Raw, w.intervals(), w.factsWhere(), ""), w.intervals(), w.Raw, w.otps), having)
	return q, args
}

// firstDeliveredKey orders a journey's delivered attempts: the first
// DELIVERED decides the outcome and the delivering channel, and at equal
// times (tyntec's times may be whole seconds) the attempt that started
// first, as journeyOutcome reads it; without the tie-break the engine
// picked either, and a figure could change with how the rows were stored.
const firstDeliveredKey = "(assumeNotNull(a_delivered), a_first, toString(channel), a_no)"

// linkRank orders an OTP's links (journey_links) when it has several: a
// link naming another journey before one naming the attempt itself (or
// none) — a push status without hiddenDetails (a settling callback, the
// poller's read) links the request to its own uuid, and must not split it
// from the login an earlier status named — then the first.
const linkRank = "(journey_id IN ('', toString(otp_id)), linked_at, journey_id)"

// journeyKeyedSQL adds journey to each row of attempts (a subquery with
// otp_id): the login's correlationId when journey_links links the OTP (or
// method attempt) to one, by linkRank if several, else the OTP's own id,
// so an OTP nobody linked is a journey of its own. Only the links of OTPs
// with facts in the read range are read (a link's own time is when it was
// registered, which says nothing reliable about the OTP's facts); raw
// windows read them all, and a window of a few OTPs (otps) theirs.
func journeyKeyedSQL(attempts string, ivs []span, raw bool, otps string) string {
	links := "1"
	if otps != "" {
		links = "otp_id IN " + otps
	} else if !raw && len(ivs) > 0 {
		var days []string
		for _, iv := range ivs {
			days = append(days, fmt.Sprintf("(day >= toDate(%s) AND day <= toDate(%s))", msTime(iv.from.Add(-MaxAttemptSpan)), msTime(iv.to.Add(MaxAttemptSpan))))
		}
		links = "otp_id IN (SELECT otp_id FROM channel_events WHERE " + strings.Join(days, " OR ") + ")"
	}
	return fmt.Sprintf(`SELECT a.*, if(l.l_journey = '', toString(a.otp_id), l.l_journey) AS journey
FROM (%s) AS a
LEFT JOIN (
    SELECT otp_id AS l_otp, argMin(journey_id, `+linkRank+`) AS l_journey
    FROM journey_links WHERE %s GROUP BY otp_id
) AS l ON a.otp_id = l.l_otp`, attempts, links)
}

// journeyStatusSQL is journeysSQL with each journey's polled OTP status:
// s_final (a final status, VERIFIED, EXPIRED or TOO_MANY_ATTEMPTS, was
// polled), s_verified (VERIFIED was) and s_rate (the poller's least sample
// rate). A status counts for its journey when it was observed within
// MaxAttemptSpan of the journey's first attempt — a fact of the journey like
// its delivery events, so one bound decides what a window reads and which
// hours a late status changes.
func (w Window) journeyStatusSQL() (string, []any) {
	if w.patched {
		return w.patch(journeyCols+", s_final, s_verified, s_rate", Window.journeyStatusSQL)
	}
	if len(w.stored) > 0 {
		having, args := w.filter("j_first", "j_profile", "j_primary")
		return "SELECT " + journeyCols + ", s_final, s_verified, s_rate FROM hour_journeys WHERE " + having, args
	}
	sub, args := w.journeysSQL()
	var ranges []string
	for _, iv := range w.intervals() {
		ranges = append(ranges, fmt.Sprintf("(observed_at >= %s AND observed_at < %s)", msTime(iv.from.Add(-MaxAttemptSpan)), msTime(iv.to.Add(MaxAttemptSpan))))
	}
	statusWhere := "(" + strings.Join(ranges, " OR ") + ")"
	if w.otps != "" {
		statusWhere += " AND " + w.otpsWhere()
	}
	q := fmt.Sprintf(`SELECT `+journeyCols+`,
    toUInt8(arrayExists(x -> x.2 >= 1, sts)) AS s_final,
    toUInt8(arrayExists(x -> x.2 = 2, sts)) AS s_verified,
    if(empty(sts), 0., arrayMin(arrayMap(x -> x.3, sts))) AS s_rate
FROM (
    SELECT j.*, arrayFilter(x -> x.1 >= j.j_first - toIntervalMillisecond(%[1]d) AND x.1 < j.j_first + toIntervalMillisecond(%[1]d), s.all_sts) AS sts
    FROM (%[2]s) AS j
    LEFT JOIN (
        SELECT otp_id, groupArray((observed_at,
            toUInt8(multiIf(otp_status = 'VERIFIED', 2, otp_status IN ('EXPIRED', 'TOO_MANY_ATTEMPTS'), 1, 0)), sample_rate)) AS all_sts
        FROM otp_status
        WHERE %[3]s
        GROUP BY otp_id
    ) AS s ON j.otp_id = s.otp_id
)`, MaxAttemptSpan.Milliseconds(), sub, statusWhere)
	return q, args
}

// storedSQL selects the stored rows of w: the hours w covers whole at
// their versions, as one set (versionsSQL's), and per hour
// it covers in part, its version and first (the attempt's or journey's
// first event) within w. One OR of ANDs: an AND of the hours' OR and the
// intervals' OR made ClickHouse expand them into every pair; and a term
// per whole hour made a series cutting every hour (a zone of half hours,
// by the hour) test each row against hundreds: 30 days took 9 s.
func (w Window) storedSQL(first string) string {
	var whole []rolledHour
	var parts []string
	ivs := w.intervals()
	for _, h := range w.stored {
		end := h.hour.Add(time.Hour)
		for _, iv := range ivs {
			from, to := maxTime(iv.from, h.hour), minTime(iv.to, end)
			if !from.Before(to) {
				continue
			}
			if from.Equal(h.hour) && to.Equal(end) {
				whole = append(whole, h)
				continue
			}
			parts = append(parts, fmt.Sprintf("(hour = %s AND version = %d AND %s >= %s AND %s < %s)",
				sqlHour(h.hour), h.version, first, msTime(from), first, msTime(to)))
		}
	}
	if len(whole) > 0 {
		parts = append(parts, versionsSQL(whole))
	}
	if len(parts) == 0 {
		return "0"
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// hoursSQL selects the rows of the given hours at their versions: as ranges
// of consecutive hours computed by one run when there are a few (the job's
// first run over history computes them all under one version), else as
// versionsSQL's set. A running system's hours each carry the version of
// the run that last computed or patched them, so a term per hour: ORed, 30
// days of them took the engine 0.9–1.4 s to evaluate and 90 days 7–12 s
// (11 M events, one query), where the set takes 15 and 35 ms.
func hoursSQL(hs []rolledHour) string {
	if len(hs) == 0 {
		return "0"
	}
	hs = slices.Clone(hs)
	sort.Slice(hs, func(i, j int) bool { return hs[i].hour.Before(hs[j].hour) })
	var parts []string
	for i := 0; i < len(hs); {
		j := i + 1
		for j < len(hs) && hs[j].version == hs[i].version && hs[j].hour.Equal(hs[j-1].hour.Add(time.Hour)) {
			j++
		}
		if len(parts) == maxHourRanges {
			return versionsSQL(hs)
		}
		parts = append(parts, fmt.Sprintf("(hour >= %s AND hour < %s AND version = %d)", sqlHour(hs[i].hour), sqlHour(hs[j-1].hour.Add(time.Hour)), hs[i].version))
		i = j
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// maxHourRanges is the most ranges hoursSQL ORs; more are one set.
const maxHourRanges = 8

// versionsSQL selects the rows of periods (hours, or days by their first
// hour) at their versions: one set of (seconds, version) integer pairs,
// within the periods' bounds (which the tables' sort keys prune by). Pairs
// of (toDateTime(…), version) cost the engine a function to fold per pair
// before it reads a row: 70 ms for 30 days of hours, 200 for 90.
func versionsSQL(ps []rolledHour) string {
	if len(ps) == 0 {
		return "0"
	}
	lo, hi := ps[0].hour, ps[0].hour
	pairs := make([]string, len(ps))
	for i, p := range ps {
		lo, hi = minTime(lo, p.hour), maxTime(hi, p.hour)
		pairs[i] = fmt.Sprintf("(%d, %d)", p.hour.Unix(), p.version)
	}
	return fmt.Sprintf("(hour >= %s AND hour <= %s AND (hour, version) IN (%s))", sqlHour(lo), sqlHour(hi), strings.Join(pairs, ", "))
}

func rate(num, den uint64) *float64 {
	if den == 0 {
		return nil
	}
	r := float64(num) / float64(den)
	return &r
}

func percentiles(n uint64, q []float64) *Percentiles {
	if n == 0 || len(q) < 2 || math.IsNaN(q[0]) {
		return nil
	}
	return &Percentiles{P50: q[0], P95: q[1]}
}

// Channels returns the attempts of the window per channel, busiest first.
func (db *DB) Channels(ctx context.Context, w Window) ([]ChannelStats, error) {
	if err := w.check(); err != nil {
		return nil, err
	}
	var out []ChannelStats
	var lost map[string]uint64
	err := together(ctx, func(ctx context.Context) (err error) {
		out, err = fromRollups(ctx, db, w, db.channelsRolled, db.channelsLive)
		return err
	}, func(ctx context.Context) (err error) {
		lost, err = db.unrecoverable(ctx, w)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Unrecoverable = lost[out[i].Channel]
	}
	return out, nil
}

// unrecoverable counts, per channel, the window's attempts whose lost
// webhooks the poller could not recover (table reconciliations), placed by
// the attempt's dispatch. The table is small (only lost webhooks), so it is
// read live for every window.
func (db *DB) unrecoverable(ctx context.Context, w Window) (map[string]uint64, error) {
	w.spans = nil
	cond, args := w.filter("since", "profile_id", "channel")
	q := `SELECT toString(channel) AS ch, uniqExact(otp_id, since) FROM reconciliations
WHERE result = 'unrecoverable' AND ` + cond + `
GROUP BY ch`
	out := map[string]uint64{}
	err := db.eachRow(ctx, "unrecoverable", q, args, func(rows driver.Rows) error {
		var ch string
		var n uint64
		if err := rows.Scan(&ch, &n); err != nil {
			return err
		}
		out[ch] = n
		return nil
	})
	return out, err
}

// fromRollups checks w, then answers it with rolled where hourly rollups serve
// part of it, else with live from the raw tables and attempts.
func fromRollups[T any](ctx context.Context, db *DB, w Window, rolled func(context.Context, Window, plan) (T, error), live func(context.Context, Window) (T, error)) (T, error) {
	var zero T
	if err := w.check(); err != nil {
		return zero, err
	}
	p, ok, err := db.planWindow(ctx, w)
	if err != nil {
		return zero, err
	}
	if ok {
		return rolled(listing(ctx, p.live...), w, p)
	}
	return live(ctx, w)
}

// channelsLive is Channels from the raw tables and attempts.
func (db *DB) channelsLive(ctx context.Context, w Window) ([]ChannelStats, error) {
	sub, args := w.channelAttemptsSQL()
	q := fmt.Sprintf(`SELECT toString(channel) AS ch, grouping(code) AS by_channel, code,
`+attemptCountsSQL+`
    arrayMap(x -> toFloat64(x), quantilesExact(0.5, 0.95)(toUnixTimestamp64Milli(a_delivered) - toUnixTimestamp64Milli(a_dispatched))) AS lat
FROM (
    SELECT *, if(a_delivered IS NULL AND a_failed IS NOT NULL, a_err, '') AS code
    FROM (%s)
)
GROUP BY GROUPING SETS ((channel), (channel, code))
ORDER BY ch, by_channel DESC, failed DESC, code`, sub)
	rows, err := db.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query channels: %w", err)
	}
	defer rows.Close()
	byName := map[string]*ChannelStats{}
	for rows.Next() {
		var (
			ch, code                                                                    string
			byChannel                                                                   uint64
			attempts, delivered, failed, undeliverable, timedOut, unknown, polled, latN uint64
			pendingFirst                                                                *time.Time
			lat                                                                         []float64
		)
		if err := rows.Scan(&ch, &byChannel, &code, &attempts, &delivered, &failed, &undeliverable, &timedOut, &unknown, &polled, &latN, &pendingFirst, &lat); err != nil {
			return nil, fmt.Errorf("read channels: %w", err)
		}
		cs := byName[ch]
		if cs == nil {
			cs = &ChannelStats{Channel: ch, Errors: []ErrorCount{}}
			byName[ch] = cs
		}
		// grouping(code) is 1 when code is aggregated away: the channel's row.
		if byChannel == 1 {
			cs.Attempts, cs.Delivered, cs.Failed = attempts, delivered, failed
			cs.Undeliverable, cs.TimedOut = undeliverable, timedOut
			cs.Pending = attempts - delivered - failed
			cs.UnknownStatus, cs.RecoveredByPolling = unknown, polled
			cs.DeliveryRate = rate(delivered, delivered+failed)
			cs.LatencyMS = percentiles(latN, lat)
		} else if failed > 0 {
			cs.Errors = append(cs.Errors, ErrorCount{Code: code, Count: failed})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read channels: %w", err)
	}
	conv, err := db.conversion(ctx, w)
	if err != nil {
		return nil, err
	}
	return channelList(byName, conv), nil
}

// channelList is byName with each channel's verification conversion, its
// errors most frequent first, and the channels busiest first.
func channelList(byName map[string]*ChannelStats, conv map[string]Conversion) []ChannelStats {
	out := make([]ChannelStats, 0, len(byName))
	for ch, cs := range byName {
		sort.Slice(cs.Errors, func(i, j int) bool {
			if cs.Errors[i].Count != cs.Errors[j].Count {
				return cs.Errors[i].Count > cs.Errors[j].Count
			}
			return cs.Errors[i].Code < cs.Errors[j].Code
		})
		if c, ok := conv[ch]; ok {
			cs.Verification = &c
		}
		out = append(out, *cs)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Attempts != out[j].Attempts {
			return out[i].Attempts > out[j].Attempts
		}
		return out[i].Channel < out[j].Channel
	})
	return out
}

// conversion returns the verification conversion per channel that delivered
// (the journey's first DELIVERED), for journeys starting in the window.
func (db *DB) conversion(ctx context.Context, w Window) (map[string]Conversion, error) {
	out := map[string]Conversion{}
	if err := db.addConversion(ctx, w, out); err != nil {
		return nil, err
	}
	for ch, c := range out {
		c.Rate = rate(c.Verified, c.Polled)
		out[ch] = c
	}
	return out, nil
}

// Fallback returns the journeys of the window: fallback share, outcomes,
// paths (most taken first) and time to deliver.
func (db *DB) Fallback(ctx context.Context, w Window) (FallbackStats, error) {
	return fromRollups(ctx, db, w, db.fallbackRolled, db.fallbackLive)
}

// fallbackLive is Fallback from the raw tables and attempts.
func (db *DB) fallbackLive(ctx context.Context, w Window) (FallbackStats, error) {
	var out FallbackStats
	sub, args := w.journeysSQL()
	q := fmt.Sprintf(`SELECT grouping(path) AS total, path,
`+journeyCountsSQL+`
    countIf(`+ttdKnownSQL+`) AS ttd_n,
    arrayMap(x -> toFloat64(x), quantilesExactIf(0.5, 0.95)(toUnixTimestamp64Milli(assumeNotNull(j_delivered)) - toUnixTimestamp64Milli(j_first), `+ttdKnownSQL+`)) AS ttd
FROM (%s)
GROUP BY ROLLUP(path)
ORDER BY total DESC, otps DESC, path`, sub)
	rows, err := db.conn.Query(ctx, q, args...)
	if err != nil {
		return out, fmt.Errorf("query fallback: %w", err)
	}
	defer rows.Close()
	out.Paths = []PathStats{}
	for rows.Next() {
		var (
			total                                                                uint64
			path                                                                 string
			otps, fallback, resends, oPrimary, oFallback, oFailed, oPending, del uint64
			ttdN                                                                 uint64
			ttd                                                                  []float64
		)
		if err := rows.Scan(&total, &path, &otps, &fallback, &resends, &oPrimary, &oFallback, &oFailed, &oPending, &del, &ttdN, &ttd); err != nil {
			return out, fmt.Errorf("read fallback: %w", err)
		}
		if total == 1 {
			out.OTPs, out.FallbackOTPs, out.Resends = otps, fallback, resends
			out.FallbackRate = rate(fallback, otps)
			out.Outcomes = Outcomes{DeliveredPrimary: oPrimary, DeliveredFallback: oFallback, Failed: oFailed, Pending: oPending}
			out.TimeToDeliverMS = percentiles(ttdN, ttd)
			continue
		}
		out.Paths = append(out.Paths, newPathStats(path, otps, del, oFailed, oPending))
	}
	return out, rows.Err()
}

// Event is one stored delivery fact of a journey.
type Event struct {
	EventID       string    `json:"event_id"`
	Channel       string    `json:"channel"`
	Status        string    `json:"status"`
	Time          time.Time `json:"time"`
	ReceivedAt    time.Time `json:"received_at"`
	ErrorCode     string    `json:"error_code,omitempty"`
	ErrorMessage  string    `json:"error_message,omitempty"`
	Source        string    `json:"source"`
	MissedWebhook bool      `json:"missed_webhook,omitempty"`
	UnknownStatus bool      `json:"unknown_status,omitempty"`
	// UnknownChannel marks a channel tyntec added after this build.
	UnknownChannel bool `json:"unknown_channel,omitempty"`
	// TimeFromReceipt says tyntec gave no usable time: Time is when the
	// fact was received (the webhook's timestampFromReceipt).
	TimeFromReceipt bool `json:"time_from_receipt,omitempty"`
}

// AttemptDetail is one attempt (one dispatch) of a journey.
type AttemptDetail struct {
	Channel string `json:"channel"`
	// Attempt numbers the channel's attempts from 1, in dispatch order.
	Attempt uint32 `json:"attempt"`
	Outcome string `json:"outcome"`
	// Failure is the status of a failed attempt's first failure:
	// UNDELIVERABLE or TIMED_OUT.
	Failure      string     `json:"failure,omitempty"`
	FirstAt      time.Time  `json:"first_at"`
	DispatchedAt *time.Time `json:"dispatched_at"`
	DeliveredAt  *time.Time `json:"delivered_at"`
	FailedAt     *time.Time `json:"failed_at"`
	ErrorCode    string     `json:"error_code,omitempty"`
	LatencyMS    *int64     `json:"latency_ms"`
	Unknown      bool       `json:"unknown_status,omitempty"`
	Polled       bool       `json:"recovered_by_polling,omitempty"`
	// Unrecoverable marks a pending attempt whose lost outcome the poller
	// declared unrecoverable: it stays pending for good.
	Unrecoverable bool `json:"unrecoverable,omitempty"`
}

// PolledStatus is the latest OTP status the poller (or an upstream service) reported.
type PolledStatus struct {
	Status       string    `json:"status"`
	AttemptCount uint16    `json:"attempt_count"`
	ObservedAt   time.Time `json:"observed_at"`
	Source       string    `json:"source"`
}

// ResendRecord is one resend decision about the OTP.
type ResendRecord struct {
	DecisionID     string    `json:"decision_id"`
	Result         string    `json:"result"`
	Reason         string    `json:"reason,omitempty"`
	Via            string    `json:"via,omitempty"`
	TriggerChannel string    `json:"trigger_channel,omitempty"`
	TriggerStatus  string    `json:"trigger_status,omitempty"`
	Attempt        uint16    `json:"attempt"`
	DryRun         bool      `json:"dry_run"`
	DecidedAt      time.Time `json:"decided_at"`
}

// Journey is one OTP across its channels.
type Journey struct {
	OTPID     string `json:"otp_id"`
	ProfileID string `json:"profile_id,omitempty"`
	// FirstAt is the first fact of its attempts; nil when it has none
	// (every fact that placed them gone by retention).
	FirstAt  *time.Time `json:"first_at"`
	Path     string     `json:"path"`
	Primary  string     `json:"primary"`
	Fallback bool       `json:"fallback"`
	// ResendAttempts are the attempts beyond the first on a channel.
	ResendAttempts  uint64          `json:"resend_attempts"`
	Outcome         string          `json:"outcome"`
	TimeToDeliverMS *int64          `json:"time_to_deliver_ms"`
	Attempts        []AttemptDetail `json:"attempts"`
	Events          []Event         `json:"events"`
	PolledStatus    *PolledStatus   `json:"polled_status"`
	Resends         []ResendRecord  `json:"resends"`
	Completeness    Completeness    `json:"completeness"`
}

// ErrBadOTPID is returned by Journey for an id that is not a UUID.
var ErrBadOTPID = errors.New("otp id is not a UUID")

// Journey returns everything stored about one OTP: its events in time order,
// its attempts, path and outcome (by the definitions above), the latest
// polled status and the resends. An OTP without events is ErrNotFound.
func (db *DB) Journey(ctx context.Context, otpID string, now time.Time) (Journey, error) {
	id, err := uuid.Parse(otpID)
	if err != nil {
		if len(otpID) > 64 { // a UUID is 36; the error need not echo a long path back
			otpID = otpID[:64] + "…"
		}
		return Journey{}, fmt.Errorf("%w: %q", ErrBadOTPID, otpID)
	}
	j := Journey{OTPID: id.String(), Attempts: []AttemptDetail{}, Events: []Event{}, Resends: []ResendRecord{}}
	rows, err := db.conn.Query(ctx, `SELECT event_id, toString(channel), toString(status), event_time, received_at,
    toString(error_code), error_message, toString(source), missed_webhook, unknown_status, unknown_channel, timestamp_from_receipt, toString(profile_id)
FROM delivery_events FINAL
WHERE otp_id = toUUID(?)
ORDER BY event_time, multiIf(status = 'DISPATCHED', 0, status IN ('DELIVERED', 'UNDELIVERABLE', 'TIMED_OUT'), 2, 1), channel, event_id`, j.OTPID)
	if err != nil {
		return j, fmt.Errorf("query journey events: %w", err)
	}
	for rows.Next() {
		var e Event
		var profile string
		if err := rows.Scan(&e.EventID, &e.Channel, &e.Status, &e.Time, &e.ReceivedAt, &e.ErrorCode, &e.ErrorMessage, &e.Source, &e.MissedWebhook, &e.UnknownStatus, &e.UnknownChannel, &e.TimeFromReceipt, &profile); err != nil {
			rows.Close()
			return j, fmt.Errorf("read journey events: %w", err)
		}
		if profile != "" {
			j.ProfileID = profile
		}
		j.Events = append(j.Events, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return j, fmt.Errorf("read journey events: %w", err)
	}
	if len(j.Events) == 0 {
		return j, fmt.Errorf("otp %s: %w", j.OTPID, ErrNotFound)
	}

	// The attempts come from the same aggregate the windowed figures use.
	q := fmt.Sprintf("SELECT toString(channel), a_no, a_first, a_dispatched, a_delivered, a_failed, a_fail_status, a_err, a_unknown, a_polled FROM (%s) ORDER BY a_first, channel, a_no",
		attemptsSQL(false, nil, "otp_id = toUUID(?)", ""))
	rows, err = db.conn.Query(ctx, q, j.OTPID)
	if err != nil {
		return j, fmt.Errorf("query journey attempts: %w", err)
	}
	var firstDelivered *time.Time
	var channels []string
	for rows.Next() {
		var a AttemptDetail
		var unknown, polled uint8
		if err := rows.Scan(&a.Channel, &a.Attempt, &a.FirstAt, &a.DispatchedAt, &a.DeliveredAt, &a.FailedAt, &a.Failure, &a.ErrorCode, &unknown, &polled); err != nil {
			rows.Close()
			return j, fmt.Errorf("read journey attempts: %w", err)
		}
		a.Unknown, a.Polled = unknown == 1, polled == 1
		switch {
		case a.DeliveredAt != nil:
			a.Outcome, a.ErrorCode, a.Failure = AttemptDelivered, "", ""
			if a.DispatchedAt != nil {
				ms := a.DeliveredAt.Sub(*a.DispatchedAt).Milliseconds()
				a.LatencyMS = &ms
			}
			if firstDelivered == nil || a.DeliveredAt.Before(*firstDelivered) {
				firstDelivered = a.DeliveredAt
			}
		case a.FailedAt != nil:
			a.Outcome = AttemptFailed
		default:
			a.Outcome, a.ErrorCode = AttemptPending, ""
		}
		j.Attempts = append(j.Attempts, a)
		if !slices.Contains(channels, a.Channel) {
			channels = append(channels, a.Channel)
		} else {
			j.ResendAttempts++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return j, fmt.Errorf("read journey attempts: %w", err)
	}
	if err := db.markUnrecoverable(ctx, j.OTPID, j.Attempts); err != nil {
		return j, err
	}
	if len(j.Attempts) > 0 {
		first := j.Attempts[0].FirstAt
		j.FirstAt = &first
		j.Path, j.Primary, j.Fallback = strings.Join(channels, ">"), channels[0], len(channels) > 1
		j.Outcome = journeyOutcome(j.Attempts)
		j.Completeness = journeyCompleteness(j.Attempts, now)
		// As ttdKnownSQL: a fact before the first DELIVERED, or a
		// DISPATCHED at its instant.
		dispatchedFirst := slices.ContainsFunc(j.Attempts, func(a AttemptDetail) bool { return a.DispatchedAt != nil && a.DispatchedAt.Equal(first) })
		if firstDelivered != nil && (firstDelivered.After(first) || dispatchedFirst) {
			ms := firstDelivered.Sub(first).Milliseconds()
			j.TimeToDeliverMS = &ms
		}
	}

	var ps PolledStatus
	err = db.conn.QueryRow(ctx, `SELECT toString(argMax(otp_status, (observed_at, attempt_count))), argMax(attempt_count, (observed_at, attempt_count)),
    max(observed_at), toString(argMax(source, (observed_at, attempt_count))), count()
FROM otp_status WHERE otp_id = toUUID(?)`, j.OTPID).Scan(&ps.Status, &ps.AttemptCount, &ps.ObservedAt, &ps.Source, new(uint64))
	if err != nil {
		return j, fmt.Errorf("query journey status: %w", err)
	}
	if ps.Status != "" {
		j.PolledStatus = &ps
	}

	rows, err = db.conn.Query(ctx, `SELECT decision_id, toString(result), reason, toString(via), toString(trigger_channel), toString(trigger_status), attempt, dry_run, decided_at
FROM resends FINAL WHERE otp_id = toUUID(?) ORDER BY decided_at, event_id`, j.OTPID)
	if err != nil {
		return j, fmt.Errorf("query journey resends: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ResendRecord
		if err := rows.Scan(&r.DecisionID, &r.Result, &r.Reason, &r.Via, &r.TriggerChannel, &r.TriggerStatus, &r.Attempt, &r.DryRun, &r.DecidedAt); err != nil {
			return j, fmt.Errorf("read journey resends: %w", err)
		}
		j.Resends = append(j.Resends, r)
	}
	return j, rows.Err()
}

// journeyOutcome applies the journey definition to attempts in order: the
// channel of the first DELIVERED decides between primary and fallback.
func journeyOutcome(as []AttemptDetail) string {
	if len(as) == 0 {
		return OutcomePending
	}
	var first *AttemptDetail
	allFailed := true
	for i, a := range as {
		if a.DeliveredAt != nil && (first == nil || a.DeliveredAt.Before(*first.DeliveredAt)) {
			first = &as[i]
		}
		allFailed = allFailed && a.Outcome == AttemptFailed
	}
	switch {
	case first != nil && first.Channel == as[0].Channel:
		return OutcomeDeliveredPrimary
	case first != nil:
		return OutcomeDeliveredFallback
	case allFailed:
		return OutcomeFailed
	}
	return OutcomePending
}
