// Package reload keeps values that come from files which may be replaced
// while the process runs — a renewed TLS certificate, a webhook token or API
// key rotated in a mounted secret — and loads them again once the files
// change, so that neither needs a restart.
//
// A Value looks at its files' modification times and sizes when it is read,
// at most every Every, on the reading goroutine: no goroutine of its own,
// and between looks a read costs a clock reading and an atomic load. A load
// that fails (a file half written, emptied, removed) keeps the value before
// in service, with a warning, and is tried again at the next look.
package reload

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpscope/otpscope/internal/flagenv"
)

// Every is how often a Value looks at its files: how soon after a rotation
// the new value is in use.
const Every = 10 * time.Second

// failing is otpscope_secret_reload_failing: process-wide, like Go's own
// collectors, since the values live in whichever modules a process runs.
var failing = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "otpscope_secret_reload_failing",
	Help: "1 while a secret's file changed but does not load (unreadable, empty, invalid), so the value before stays in use; 0 once it loads.",
}, []string{"secret"})

// Collector is the package's metric, for every process's registry.
func Collector() prometheus.Collector { return failing }

// failingNow names the values whose files changed but do not load, for
// Failing.
var failingNow sync.Map // what → struct{}

// Failing names the values of this process whose files changed but do not
// load ("webhook tokens"), sorted: for the status the console shows.
func Failing() []string {
	var whats []string
	failingNow.Range(func(k, _ any) bool { whats = append(whats, k.(string)); return true })
	slices.Sort(whats)
	return whats
}

// Value is a value of type T loaded from files, or fixed.
type Value[T any] struct {
	what   string // names the value in logs: "webhook tokens"
	files  []string
	load   func() (T, error)
	logger *slog.Logger
	every  time.Duration

	cur  atomic.Pointer[T]
	next atomic.Int64 // Unix nanoseconds of the next look at the files

	mu    sync.Mutex // one look at a time
	stamp string     // the files' times and sizes when last loaded; "" before the first look
}

// Fixed is a Value that is always v.
func Fixed[T any](v T) *Value[T] {
	var x Value[T]
	x.cur.Store(&v)
	return &x
}

// New is a Value that starts as initial (what the caller loaded from files
// at start) and is loaded again by load whenever one of files changes. The
// first read looks at the files at once, so that a change between the
// caller's load and New is not missed. With no files it is Fixed(initial).
// what names the value in log entries, which never hold the value.
func New[T any](what string, initial T, load func() (T, error), logger *slog.Logger, files ...string) *Value[T] {
	v := Fixed(initial)
	if len(files) > 0 {
		v.what, v.files, v.load, v.logger, v.every = what, files, load, logger, Every
		v.setFailing(false)
	}
	return v
}

// Get is the value, loaded again first when a look is due and the files
// changed since the last load.
func (v *Value[T]) Get() T {
	if v.files != nil {
		if now := time.Now().UnixNano(); now >= v.next.Load() {
			v.look(now)
		}
	}
	return *v.cur.Load()
}

// look loads the files again when they changed. Readers that find another
// looking serve the current value rather than wait.
func (v *Value[T]) look(now int64) {
	if !v.mu.TryLock() {
		return
	}
	defer v.mu.Unlock()
	if now < v.next.Load() {
		return // looked at while this reader waited for the lock
	}
	v.next.Store(now + int64(v.every))
	stamp, err := v.filesStamp()
	if err != nil {
		v.logger.Warn(v.what+": file unreadable; keeping the value loaded before", "err", err)
		v.setFailing(true)
		return
	}
	if stamp == v.stamp {
		return
	}
	x, err := v.load()
	if err != nil {
		// Perhaps half written (a certificate renewed, not yet its key):
		// tried again at the next look.
		v.logger.Warn(v.what+": changed but does not load; keeping the value loaded before", "err", err)
		v.setFailing(true)
		return
	}
	first := v.stamp == ""
	v.cur.Store(&x)
	v.stamp = stamp
	v.setFailing(false)
	if !first {
		v.logger.Info(v.what+" reloaded", "files", v.files)
	}
}

// setFailing sets the value's series, labelled by what in snake case
// ("webhook tokens" → webhook_tokens).
func (v *Value[T]) setFailing(f bool) {
	x := 0.0
	if f {
		x = 1
		failingNow.Store(v.what, struct{}{})
	} else {
		failingNow.Delete(v.what)
	}
	failing.WithLabelValues(strings.ReplaceAll(strings.ToLower(v.what), " ", "_")).Set(x)
}

func (v *Value[T]) filesStamp() (string, error) {
	var stamp string
	for _, f := range v.files {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return stamp, nil
}

// Text is a setting's value, read again from file when it changes (the
// setting given by its variable's file form, flagenv.RecordFile); with no
// file, value fixed. The file is read as flagenv reads it at start.
func Text(what, value, file string, logger *slog.Logger) *Value[string] {
	if file == "" {
		return Fixed(value)
	}
	return New(what, value, func() (string, error) { return flagenv.ReadFile(file) }, logger, file)
}
