// Package history generates delivery events in bulk inside the engine, for
// the benchmarks: months of OTPs with realistic fallback shares in seconds
// (INSERT … SELECT … FROM numbers()).
package history

import (
	"context"
	"fmt"
	"time"

	"github.com/otpscope/otpscope/internal/store"
)

// Generate inserts about n delivery events: OTPs spread uniformly over
// [from, from+span), on four priorities (SMS>VIBER, SMS>VOICE, WHATSAPP>SMS, SMS); the
// primary delivers 88 % of the time, a failure falls back when the priority
// has a second channel, which delivers 90 % of the time. A fifth of the OTPs
// also get a duplicate of their outcome event in a later insert.
func Generate(ctx context.Context, db *store.DB, n int, from time.Time, span time.Duration, seed int) (int, error) {
	return GenerateUntil(ctx, db, n, from, span, span, seed)
}

// GenerateUntil is Generate keeping only the OTPs that start before
// from+until: the same OTPs, with the same ids, as the first part of what
// Generate makes.
func GenerateUntil(ctx context.Context, db *store.DB, n int, from time.Time, span, until time.Duration, seed int) (int, error) {
	otps := int(float64(n) / 2.16)
	const chunk = 500_000
	for lo := 0; lo < otps; lo += chunk {
		hi := min(otps, lo+chunk)
		q := fmt.Sprintf(`INSERT INTO delivery_events (event_id, otp_id, profile_id, channel, status, event_time, received_at, error_code, error_message, source)
SELECT concat('ds-', toString(otp), '-', e.1, '-', e.2), otp, profile, e.1, e.2, e.3, e.3 + toIntervalMillisecond(300),
    if(e.2 IN ('UNDELIVERABLE', 'TIMED_OUT'), concat('tyntec::', e.1, '::', lower(e.2)), ''), '', 'webhook'
FROM (
    SELECT
        reinterpretAsUUID(reverse(unhex(lpad(hex(cityHash64(number, 'otp', %d)), 32, '0')))) AS otp,
        ['prof-register', 'prof-login', 'prof-payment'][number %% 3 + 1] AS profile,
        [['SMS', 'VIBER'], ['SMS', 'VOICE'], ['WHATSAPP', 'SMS'], ['SMS']][cityHash64(number, 1) %% 4 + 1] AS chans,
        toDateTime64('%s', 3, 'UTC') + toIntervalMillisecond(cityHash64(number, 2) %% %d) AS t0,
        cityHash64(number, 3) %% 100 < 88 AS ok1,
        cityHash64(number, 4) %% 100 < 90 AS ok2,
        toIntervalMillisecond(500 + cityHash64(number, 5) %% 15000) AS lat1,
        toIntervalMillisecond(500 + cityHash64(number, 6) %% 9000) AS lat2,
        arrayConcat(
            [(chans[1], 'DISPATCHED', t0), (chans[1], if(ok1, 'DELIVERED', if(cityHash64(number, 7) %% 10 = 0, 'TIMED_OUT', 'UNDELIVERABLE')), t0 + lat1)],
            if(NOT ok1 AND length(chans) = 2,
               [(chans[2], 'DISPATCHED', t0 + lat1 + toIntervalMillisecond(200)), (chans[2], if(ok2, 'DELIVERED', 'UNDELIVERABLE'), t0 + lat1 + toIntervalMillisecond(200) + lat2)],
               [])) AS evs
    FROM numbers(%d, %d)
)
ARRAY JOIN evs AS e
WHERE t0 < %s`, seed, from.Format("2006-01-02 15:04:05"), span.Milliseconds(), lo, hi-lo, SQLTime(from.Add(until)))
		if err := db.Conn().Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("generate: %w", err)
		}
	}
	// Duplicates, as a redelivery after JetStream's window would store them.
	if err := db.Conn().Exec(ctx, fmt.Sprintf(`INSERT INTO delivery_events (event_id, otp_id, profile_id, channel, status, event_time, received_at, error_code, error_message, source)
SELECT event_id, otp_id, profile_id, channel, status, event_time, received_at, error_code, error_message, source
FROM delivery_events WHERE status != 'DISPATCHED' AND cityHash64(otp_id) %% 5 = 0 AND event_time >= %s AND event_time < %s`,
		SQLTime(from), SQLTime(from.Add(span)))); err != nil {
		return 0, fmt.Errorf("generate duplicates: %w", err)
	}
	var rows uint64
	if err := db.Conn().QueryRow(ctx, "SELECT count() FROM delivery_events").Scan(&rows); err != nil {
		return 0, err
	}
	return int(rows), nil
}

// SQLTime is t as a ClickHouse DateTime64(3) literal in UTC.
func SQLTime(t time.Time) string {
	return fmt.Sprintf("toDateTime64('%s', 3, 'UTC')", t.Format("2006-01-02 15:04:05.000"))
}
