// Package cronspec parses the schedules otpscope's flags take (five-field
// cron specs, descriptors such as @hourly and @every, an optional CRON_TZ=
// or TZ= prefix) with robfig/cron, refusing what robfig/cron v3.0.1
// mishandles rather than running it.
package cronspec

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Parse parses spec as cron.ParseStandard does, refusing a time zone with
// nothing after it (robfig's parser panics on it), an @every under a
// second (robfig runs it every second) and a spec that never fires
// (30 February: robfig's Next is the zero time, and a loop waiting for it
// would not wait). A panic left in robfig's parser becomes an error.
func Parse(spec string) (sched cron.Schedule, err error) {
	defer func() {
		if p := recover(); p != nil {
			sched, err = nil, fmt.Errorf("not a cron spec (%v)", p)
		}
	}()
	zone, rest := SplitZone(spec)
	if zone != "" && rest == "" {
		return nil, errors.New(`want a space and a schedule after the time zone, e.g. "CRON_TZ=Europe/Berlin 0 3 * * *"`)
	}
	if every, ok := strings.CutPrefix(rest, "@every "); ok {
		if d, err := time.ParseDuration(every); err == nil && d < time.Second {
			return nil, errors.New("want @every at least 1s")
		}
	}
	if sched, err = cron.ParseStandard(spec); err != nil {
		return nil, err
	}
	if sched.Next(time.Now()).IsZero() {
		return nil, errors.New("never fires")
	}
	return sched, nil
}

// Parser is Parse as a cron.ScheduleParser, for cron.WithParser.
type Parser struct{}

// Parse is cronspec.Parse.
func (Parser) Parse(spec string) (cron.Schedule, error) { return Parse(spec) }

// SplitZone splits spec into its CRON_TZ= or TZ= prefix, if any, and the
// schedule after it, as robfig/cron does: up to the first space.
func SplitZone(spec string) (zone, rest string) {
	if !strings.HasPrefix(spec, "TZ=") && !strings.HasPrefix(spec, "CRON_TZ=") {
		return "", spec
	}
	zone, rest, _ = strings.Cut(spec, " ")
	return zone, strings.TrimSpace(rest)
}

// Gaps are the shortest and the longest time between two of sched's runs
// in the eight days after its first run after now (a thousand runs at
// most; at least the first two): a schedule on weekdays only waits over
// the weekend, one at 09:00 and 17:00 eight hours between those.
func Gaps(sched cron.Schedule, now time.Time) (shortest, longest time.Duration) {
	prev := sched.Next(now)
	end := prev.AddDate(0, 0, 8)
	shortest = sched.Next(prev).Sub(prev)
	longest = shortest
	for range 1000 {
		next := sched.Next(prev)
		if next.IsZero() || next.After(end) {
			break
		}
		shortest, longest = min(shortest, next.Sub(prev)), max(longest, next.Sub(prev))
		prev = next
	}
	return shortest, longest
}
