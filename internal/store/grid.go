package store

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	// Zone's names resolve on a machine without /usr/share/zoneinfo too
	// (a scratch image): every binary and test reading a zone does so here.
	_ "time/tzdata"
)

// A grid cuts time into a series' buckets: multiples of step since the Unix
// epoch on the wall clock of zone (nil: UTC, where the wall clock is the
// instant). In a zone with a daylight-saving time, a day bucket starts at
// local midnight and holds 23 or 25 hours; an hour the clocks skip is an
// empty bucket, starting where the next one does. The time the clocks
// repeat stays in the bucket where its first reading ended, until the wall
// clock passes that bucket's end again: an hour they repeat is one bucket
// of two hours, and by the minute the repeated hour's last minute lasts 61,
// so that every bucket is one stretch of time, [start(i), start(i+1)).
// Wall-clock times are numbered as Unix milliseconds read as if the wall
// clock were UTC; indexSQL numbers them in ClickHouse alike, from the same
// zone database (IANA's).
type grid struct {
	zone   *time.Location
	step   int64 // ms
	origin int64 // wall ms of bucket 0's start
	n      int
	// back are the times the clocks repeat around the window.
	back []repeat
}

// repeat is a time the clocks repeat: from the instant they go back
// (Unix ms) until they read again what they read just before (to), every
// instant is in bucket k or later, k being the bucket of the instant
// before they went back.
type repeat struct{ from, to, k int64 }

// newGrid is the grid of step cutting w: its first bucket holds w.From,
// its last w.To's last millisecond.
func newGrid(w Window, step time.Duration, zone *time.Location) grid {
	if zone == time.UTC {
		zone = nil
	}
	g := grid{zone: zone, step: step.Milliseconds()}
	from := g.wall(w.From)
	g.origin = from - ((from%g.step)+g.step)%g.step
	if !w.To.After(w.From) && g.wall(w.To) <= g.origin {
		return g // an empty window on a bucket's bound: no bucket
	}
	if zone != nil {
		// Two days around the window: rows are read with a day around it,
		// and they must be numbered as Go numbers them.
		limit := w.To.Add(48 * time.Hour)
		for at := w.From.Add(-48 * time.Hour); ; {
			_, end := at.In(zone).ZoneBounds()
			if end.IsZero() || end.After(limit) {
				break
			}
			before := end.Add(-time.Millisecond)
			if back := g.wall(before) + 1 - g.wall(end); back > 0 {
				g.back = append(g.back, repeat{end.UnixMilli(), end.UnixMilli() + back, (g.wall(before) - g.origin) / g.step})
			}
			at = end
		}
	}
	g.n = int(g.index(w.To.Add(-time.Millisecond))) + 1
	return g
}

// wall is t on the grid's wall clock, in ms.
func (g grid) wall(t time.Time) int64 {
	if g.zone == nil {
		return t.UnixMilli()
	}
	_, off := t.In(g.zone).Zone()
	return t.UnixMilli() + int64(off)*1000
}

// index numbers the bucket holding t, as indexSQL does (both divide
// truncating toward zero).
func (g grid) index(t time.Time) int64 {
	i := (g.wall(t) - g.origin) / g.step
	ms := t.UnixMilli()
	for _, r := range g.back {
		if ms >= r.from && ms < r.to {
			i = max(i, r.k)
		}
	}
	return i
}

// indexSQL numbers the bucket holding the time in col (a DateTime64, or
// with secs a DateTime).
func (g grid) indexSQL(col string, secs bool) string {
	ms := "toUnixTimestamp64Milli(" + col + ")"
	if secs {
		ms = "toInt64(toUnixTimestamp(" + col + ")) * 1000"
	}
	wall := ms
	if g.zone != nil {
		// The name was checked by Zone: a quote cannot be in it.
		wall += " + 1000 * timeZoneOffset(toTimeZone(" + col + ", '" + g.zone.String() + "'))"
	}
	i := fmt.Sprintf("intDiv(%s - %d, %d)", wall, g.origin, g.step)
	if len(g.back) == 0 {
		return i
	}
	var repeats []string
	for _, r := range g.back {
		repeats = append(repeats, fmt.Sprintf("%[1]s >= %[2]d AND %[1]s < %[3]d, toInt64(%[4]d)", ms, r.from, r.to, r.k))
	}
	return fmt.Sprintf("greatest(%s, multiIf(%s, toInt64(%d)))", i, strings.Join(repeats, ", "), math.MinInt64)
}

// start is the first instant of bucket i: when the wall clock first reads
// its start, or, when the clocks skip that time, when they jump past it.
// Times are in the grid's zone (UTC without one).
func (g grid) start(i int) time.Time {
	w := g.origin + int64(i)*g.step
	n := time.UnixMilli(w).UTC()
	if g.zone == nil {
		return n
	}
	t := time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), n.Minute(), n.Second(), n.Nanosecond(), g.zone)
	begin, end := t.ZoneBounds()
	// Skipped: Date gave a time as far past the jump as the wall time is
	// into it, or as far before.
	if wt := g.wall(t); wt > w {
		return begin
	} else if wt < w {
		return end
	}
	if begin.IsZero() {
		return t
	}
	// A time the clocks repeat: Date may give the second reading.
	_, before := begin.Add(-time.Millisecond).Zone()
	if e := time.UnixMilli(w - int64(before)*1000).In(g.zone); e.Before(begin) && g.wall(e) == w {
		return e
	}
	return t
}

// zoneName is what Zone accepts: an IANA name (Europe/Berlin,
// America/Argentina/Buenos_Aires, Etc/GMT+5, UTC).
var zoneName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$`)

// Zone reads an IANA time zone name for the buckets of a series or the
// days of a report. "" is UTC; "Local" is refused, as it means what the
// server's machine is set to.
func Zone(name string) (*time.Location, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return time.UTC, nil
	}
	if !zoneName.MatchString(name) || name == "Local" {
		return nil, fmt.Errorf("time zone %q is not an IANA name such as Europe/Berlin or UTC", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		if known := zoneCased(name); known != "" {
			return nil, fmt.Errorf("time zone %q is not known: names are case-sensitive, did you mean %s?", name, known)
		}
		return nil, fmt.Errorf("time zone %q is not known (an IANA name such as Europe/Berlin or UTC)", name)
	}
	return loc, nil
}

// zoneCased is the known name that name, typed in the wrong case, most
// likely means ("utc", "europe/berlin", "america/new_york"), or "".
func zoneCased(name string) string {
	title := []byte(strings.ToLower(name)) // ASCII: Zone's pattern
	for i, c := range title {
		if c >= 'a' && c <= 'z' && (i == 0 || strings.IndexByte("/_-", title[i-1]) >= 0) {
			title[i] = c - 'a' + 'A'
		}
	}
	for _, c := range []string{strings.ToUpper(name), string(title)} {
		if c == name || strings.EqualFold(c, "Local") {
			continue
		}
		if _, err := time.LoadLocation(c); err == nil {
			return c
		}
	}
	return ""
}
