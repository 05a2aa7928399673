package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrStoreInUse is an embedded server's store another server holds. Two
// servers on one store is no refusal of NATS' own: a second one
// recovering the stream beside the first truncated its message file
// (found by a chaos review: 11,083 acknowledged webhooks gone at the
// first one's next restart).
var ErrStoreInUse = errors.New("another process's embedded NATS server holds this data directory (is otpscope or ingest running on it? stop it first)")

// storeLock is the lock an embedded server holds on its store: an
// exclusive flock on <store>/otpscope.lock, taken before the server
// reads anything there and released when it has shut down.
type storeLock struct {
	f    *os.File
	srv  *server.Server // set once the server exists
	once sync.Once
}

func (l *storeLock) release() { l.once.Do(func() { l.f.Close() }) }

// storeLocks are this process's locks by store: a server restarted in the
// same process (tests; JetStream never restarts the server) finds its
// predecessor's lock, which the flock alone would refuse it, and takes it
// over once that server is down.
var (
	storeLocksMu sync.Mutex
	storeLocks   = map[string]*storeLock{}
)

// lockStore locks dir for one embedded server; hold gives it the server,
// whose shutdown releases the lock.
func lockStore(dir string) (hold func(*server.Server), err error) {
	storeLocksMu.Lock()
	defer storeLocksMu.Unlock()
	if prev := storeLocks[dir]; prev != nil {
		if prev.srv == nil || prev.srv.Running() {
			return nil, fmt.Errorf("embedded nats %s: %w", dir, ErrStoreInUse)
		}
		prev.release()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "otpscope.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("embedded nats %s: %w", dir, ErrStoreInUse)
		}
		return nil, fmt.Errorf("embedded nats: lock %s: %w", dir, err)
	}
	l := &storeLock{f: f}
	storeLocks[dir] = l
	return func(srv *server.Server) {
		if srv == nil { // it never started
			storeLocksMu.Lock()
			delete(storeLocks, dir)
			storeLocksMu.Unlock()
			l.release()
			return
		}
		storeLocksMu.Lock()
		l.srv = srv
		storeLocksMu.Unlock()
		go func() {
			srv.WaitForShutdown()
			l.release()
		}()
	}, nil
}
