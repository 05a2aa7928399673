package store

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	// Zone's names resolve on a machine without /usr/share/zoneinfo too
	// (a scratch image): every binary and test reading a zone does so here.
	_ "time/tzdata"
)

// A grid cuts time into a series' buckets: multiples of step since the Unix
// epoch on the wall clock of zone (nil: UTC, where the wall clock is the
// instant). In a zone with a daylight-saving time, a day bucket starts at
// local midnight and holds 23 or 25 hours; an hour the clocks skip is an
// empty bucket, starting where the next one does; an hour they repeat is
// one bucket holding both. Wall-clock times are numbered as Unix
// milliseconds read as if the wall clock were UTC; indexSQL numbers them in
// ClickHouse alike, from the same zone database (IANA's).
type grid struct {
	zone   *time.Location
	step   int64 // ms
	origin int64 // wall ms of bucket 0's start
	n      int
}

// newGrid is the grid of step cutting w: its first bucket holds w.From,
// its last w.To's last millisecond.
func newGrid(w Window, step time.Duration, zone *time.Location) grid {
	if zone == time.UTC {
		zone = nil
	}
	g := grid{zone: zone, step: step.Milliseconds()}
	from := g.wall(w.From)
	g.origin = from - ((from%g.step)+g.step)%g.step
	if g.wall(w.To) <= g.origin {
		return g // an empty window on a bucket's bound: no bucket
	}
	// The greatest bucket is the last millisecond's, or, when the window
	// ends in an hour the clocks repeat, the one of the instant before the
	// clocks went back.
	last := g.index(w.To.Add(-time.Millisecond))
	if zone != nil {
		if start, _ := w.To.Add(-time.Millisecond).In(zone).ZoneBounds(); start.After(w.From) {
			last = max(last, g.index(start.Add(-time.Millisecond)))
		}
	}
	g.n = int(last) + 1
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
	return (g.wall(t) - g.origin) / g.step
}

// indexSQL numbers the bucket holding the time in col (a DateTime64, or
// with secs a DateTime).
func (g grid) indexSQL(col string, secs bool) string {
	ms := "toUnixTimestamp64Milli(" + col + ")"
	if secs {
		ms = "toInt64(toUnixTimestamp(" + col + ")) * 1000"
	}
	if g.zone != nil {
		// The name was checked by Zone: a quote cannot be in it.
		ms += " + 1000 * timeZoneOffset(toTimeZone(" + col + ", '" + g.zone.String() + "'))"
	}
	return fmt.Sprintf("intDiv(%s - %d, %d)", ms, g.origin, g.step)
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
	begin, _ := t.ZoneBounds()
	if begin.IsZero() {
		return t
	}
	// A time the clocks repeat: Date may give the second reading.
	_, before := begin.Add(-time.Millisecond).Zone()
	if e := time.UnixMilli(w - int64(before)*1000).In(g.zone); e.Before(begin) && g.wall(e) == w {
		return e
	}
	if g.wall(t) != w {
		return begin // skipped: Date gave the time as far past the jump
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
	title := []byte(strings.ToLower(name))
	for i := range title {
		if i == 0 || strings.IndexByte("/_-", title[i-1]) >= 0 {
			title[i] = byte(unicode.ToUpper(rune(title[i])))
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
