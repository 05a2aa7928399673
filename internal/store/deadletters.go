package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DeadLetterRecord is a stored dead letter and whether it was replayed.
type DeadLetterRecord struct {
	ID          string    `json:"id"`
	Source      string    `json:"source"`
	Reason      string    `json:"reason"`
	Field       string    `json:"field,omitempty"`
	HTTPStatus  int       `json:"httpStatus,omitempty"`
	ReceivedAt  time.Time `json:"receivedAt"`
	ContentType string    `json:"contentType,omitempty"`
	// Path is the ingest endpoint that refused it (events.DeadLetter.Path).
	Path string `json:"path,omitempty"`
	Body string `json:"body"`
	// BodyBase64 is the body's exact bytes when they are not UTF-8, which
	// Body, as JSON must, shows with U+FFFD for each invalid byte.
	BodyBase64 []byte `json:"bodyBase64,omitempty"`
	BodyBytes  int    `json:"bodyBytes"`
	Truncated  bool   `json:"truncated,omitempty"`
	// ReplayedAt is when it was put back through the normal path; nil if never.
	ReplayedAt *time.Time `json:"replayedAt,omitempty"`
}

// MaxDeadLettersListed is the most dead letters DeadLetters lists, and
// how many it lists without a Limit.
const MaxDeadLettersListed = 1000

// DeadLetterFilter selects dead letters; the zero value selects all, newest
// first, up to MaxDeadLettersListed.
type DeadLetterFilter struct {
	IDs     []string
	Source  string
	Pending bool // only those never replayed
	Limit   int
	// After, when set, lists only those that come after it in the order
	// (newest first): the next page.
	After *DeadLetterRecord
}

// DeadLetters lists the dead letters f selects, newest first.
func (db *DB) DeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetterRecord, error) {
	var where []string
	var args []any
	if len(f.IDs) > 0 {
		where, args = append(where, "d.event_id IN ?"), append(args, f.IDs)
	}
	if f.Source != "" {
		where, args = append(where, "d.source = ?"), append(args, f.Source)
	}
	if f.Pending {
		where = append(where, "(d.source, d.event_id) NOT IN (SELECT source, event_id FROM dead_letter_replays)")
	}
	if a := f.After; a != nil {
		at := msTime(a.ReceivedAt)
		// A dead letter is its source's and id's: two sources' of one id
		// and millisecond are both listed, one on each page if need be.
		where = append(where, "(d.received_at < "+at+" OR (d.received_at = "+at+" AND (d.event_id > ? OR (d.event_id = ? AND d.source > ?))))")
		args = append(args, a.ID, a.ID, a.Source)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = MaxDeadLettersListed
	}
	// A dead letter delivered twice is stored twice. GROUP BY collapses the
	// copies wherever they lie; FINAL would only within a shard, and on a
	// cluster dead_letters shards at random (schema 0001).
	q := `SELECT d.event_id, d.source, d.reason, d.field, d.http_status, d.received_at, d.content_type, d.path,
		d.body, d.body_bytes, d.truncated, r.replays > 0, r.replayed_at
	FROM (SELECT source, event_id, argMax(reason, inserted_at) AS reason, argMax(field, inserted_at) AS field,
			argMax(http_status, inserted_at) AS http_status, argMax(received_at, inserted_at) AS received_at,
			argMax(content_type, inserted_at) AS content_type, argMax(path, inserted_at) AS path, argMax(body, inserted_at) AS body,
			argMax(body_bytes, inserted_at) AS body_bytes, argMax(truncated, inserted_at) AS truncated
		FROM dead_letters GROUP BY source, event_id) AS d
	LEFT ANY JOIN (SELECT source, event_id, min(replayed_at) AS replayed_at, count() AS replays FROM dead_letter_replays GROUP BY source, event_id) AS r
		ON d.source = r.source AND d.event_id = r.event_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY d.received_at DESC, d.event_id, d.source LIMIT %d", limit)
	rows, err := db.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetterRecord
	for rows.Next() {
		var r DeadLetterRecord
		var status uint16
		var bodyBytes uint32
		var replayed bool
		var at time.Time
		if err := rows.Scan(&r.ID, &r.Source, &r.Reason, &r.Field, &status, &r.ReceivedAt, &r.ContentType, &r.Path,
			&r.Body, &bodyBytes, &r.Truncated, &replayed, &at); err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		r.HTTPStatus, r.BodyBytes = int(status), int(bodyBytes)
		if !utf8.ValidString(r.Body) {
			r.BodyBase64 = []byte(r.Body)
		}
		if replayed {
			at := at.UTC()
			r.ReplayedAt = &at
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// MarkReplayed records that the dead letter id of source was replayed at as
// messages messages.
func (db *DB) MarkReplayed(ctx context.Context, source, id string, at time.Time, messages int) error {
	err := db.conn.Exec(ctx, "INSERT INTO dead_letter_replays (event_id, source, replayed_at, messages) VALUES (?, ?, ?, ?)",
		id, source, at.UTC(), uint32(messages))
	if err != nil {
		return fmt.Errorf("record replay of dead letter %s: %w", id, err)
	}
	return nil
}

// DeleteDeadLetters deletes the dead letters ids (of any source) and the
// records of their replays, and returns the ids it found, which are gone
// from every read when it returns (a lightweight DELETE, waited for; their
// bytes leave the disk at the tables' next merges). On a cluster it deletes
// from the *_local tables ON CLUSTER: dead_letters shards at random. The
// dead letter's message stays in the NATS stream until the stream's limits
// drop it.
func (db *DB) DeleteDeadLetters(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var found []string
	err := db.eachRow(ctx, "dead letters to delete", "SELECT DISTINCT event_id FROM dead_letters WHERE event_id IN ? ORDER BY event_id", []any{ids},
		func(rows driver.Rows) error {
			var id string
			err := rows.Scan(&id)
			found = append(found, id)
			return err
		})
	if err != nil || len(found) == 0 {
		return nil, err
	}
	// The dead letters first: a failure between the two leaves replay
	// records of nothing, which no read shows and --retention-dead-letters
	// drops, rather than a replayed dead letter that looks never replayed.
	for _, table := range []string{"dead_letters", "dead_letter_replays"} {
		if err := db.conn.Exec(ctx, "DELETE FROM "+db.localTarget(table)+" WHERE event_id IN ?", found); err != nil {
			return nil, fmt.Errorf("delete dead letters from %s: %w", table, err)
		}
	}
	db.logger.Info("dead letters deleted", "ids", found)
	return found, nil
}

// PendingDeadLetters are the dead letters never replayed, as the list's
// pending filter selects them: how many, and when the newest arrived.
type PendingDeadLetters struct {
	Count uint64
	// Newest is the newest one's arrival; zero when there is none.
	Newest time.Time
}

// pendingDeadLettersTimeout bounds PendingDeadLetters on the server: it
// answers a status read, which must stay cheap whatever was dead-lettered.
const pendingDeadLettersTimeout = 2 * time.Second

// PendingDeadLetters counts the dead letters never replayed. It covers
// what the table still holds: those within --retention-dead-letters (by
// arrival; ClickHouse drops older ones at its TTL merges, so one just past
// it may count until then), including those a replay skipped (a truncated
// body, one still invalid), which stay pending until they expire. It reads
// the key columns and received_at only, not the bodies, and stops after
// pendingDeadLettersTimeout.
func (db *DB) PendingDeadLetters(ctx context.Context) (PendingDeadLetters, error) {
	ctx, cancel := context.WithTimeout(ctx, pendingDeadLettersTimeout)
	defer cancel()
	ctx = withSettings(ctx, clickhouse.Settings{"max_execution_time": int(pendingDeadLettersTimeout / time.Second)})
	// uniqExact: a dead letter delivered twice is stored twice (DeadLetters).
	var p PendingDeadLetters
	err := db.conn.QueryRow(ctx, `SELECT uniqExact(source, event_id), max(received_at) FROM dead_letters
		WHERE (source, event_id) NOT IN (SELECT source, event_id FROM dead_letter_replays)`).Scan(&p.Count, &p.Newest)
	if err != nil {
		return PendingDeadLetters{}, fmt.Errorf("count pending dead letters: %w", err)
	}
	if p.Count == 0 {
		p.Newest = time.Time{}
	}
	p.Newest = p.Newest.UTC()
	return p, nil
}
