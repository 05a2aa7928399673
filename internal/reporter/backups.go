package reporter

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/ops"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/store"
)

// BackupStore takes and lists backups: store.DB.
type BackupStore interface {
	Backup(ctx context.Context, name string, streamSeq uint64, now time.Time) (store.BackupInfo, error)
	Backups(ctx context.Context) ([]store.BackupInfo, error)
	PruneBackups(ctx context.Context, keep int) ([]string, error)
	DeleteBackup(ctx context.Context, name string) (store.BackupInfo, error)
}

// Backups serves POST /api/v1/backups (take one), GET /api/v1/backups
// (list them) and DELETE /api/v1/backups/{name} (remove one) on the
// process that runs the sink: README, "Backups and restores".
type Backups struct {
	db BackupStore
	// inserted is the stream sequence up to which the sink has inserted
	// every event (sink.Consumer.Inserted).
	inserted func(ctx context.Context) (uint64, error)
	logger   *slog.Logger
	now      func() time.Time
	taking   sync.Mutex // one backup at a time, and none removed meanwhile
	// lastTaken is when the newest backup taken began (Unix seconds), for
	// OtpscopeBackupsStale, once Watch made the backups a schedule's; 0
	// until then, and without a schedule (a backup by hand now and then is
	// no schedule that stopped).
	lastTaken prometheus.Gauge
	watched   atomic.Bool
}

// NewBackups serves db's backups; inserted says how far the sink is; reg
// may be nil.
func NewBackups(db BackupStore, inserted func(context.Context) (uint64, error), logger *slog.Logger, reg prometheus.Registerer) *Backups {
	return &Backups{db: db, inserted: inserted, logger: logger, now: time.Now,
		lastTaken: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "otpscope_backup_last_taken_timestamp_seconds",
			Help: "When the newest backup of the database began (Unix time), with --backup-schedule; 0 without one, or until a backup is known.",
		})}
}

// Watch has the gauge follow the backups, as a schedule takes them, from
// the newest known now: a restart does not look like backups that stopped.
func (b *Backups) Watch(ctx context.Context) error {
	b.watched.Store(true)
	list, err := b.db.Backups(ctx)
	if err != nil {
		return err
	}
	for _, x := range list { // newest first
		if x.Status == store.BackupCreated || x.Status == store.BackupRemoved {
			b.lastTaken.Set(float64(x.StartedAt.Unix()))
			break
		}
	}
	return nil
}

// BackupsResponse is the body of GET /api/v1/backups.
type BackupsResponse struct {
	Backups []store.BackupInfo `json:"backups"`
}

// Mount adds the actions to r and the list to reads, the router of the
// API's reads of ClickHouse (Limit): the list waits for a place like them
// and reads on their pool, not the sink's.
func (b *Backups) Mount(r, reads chi.Router) {
	none := QueryParams(nil)
	r.With(none).Post("/api/v1/backups", b.take)
	reads.With(none).Get("/api/v1/backups", b.list)
	r.With(none).Delete("/api/v1/backups/{name}", b.delete)
}

func (b *Backups) list(w http.ResponseWriter, r *http.Request) {
	list, err := b.db.Backups(r.Context())
	responder{logger: b.logger, failure: "list backups", title: "Backups unavailable", detail: "ClickHouse did not answer"}.reply(w, r, BackupsResponse{Backups: list}, err)
}

// errTaking: a backup is being taken already.
var errTaking = errors.New("a backup is being taken: one at a time")

// Take backs the database up now, unless a backup is being taken (errTaking).
// The sink's position goes into the backup (0 when unknown: a restore then
// replays from before the backup's time).
func (b *Backups) Take(ctx context.Context, now time.Time) (store.BackupInfo, error) {
	return b.takeAs(ctx, store.BackupName(now), now)
}

// takeAs takes a backup called name: BackupName by hand,
// ScheduledBackupName on a schedule, which prunes only its own.
func (b *Backups) takeAs(ctx context.Context, name string, now time.Time) (store.BackupInfo, error) {
	if !b.taking.TryLock() {
		return store.BackupInfo{}, errTaking
	}
	defer b.taking.Unlock()
	seq, err := b.inserted(ctx)
	if errors.Is(err, store.ErrPositionPending) {
		// Seconds: taken now, the backup would replay too little.
		return store.BackupInfo{}, err
	}
	if err != nil {
		b.logger.Warn("backup: the sink's position is unknown", "err", err)
		seq = 0
	}
	start := time.Now()
	info, err := b.db.Backup(ctx, name, seq, now)
	if err != nil {
		b.logger.Error("backup failed", "name", info.Name, "err", err)
		return info, err
	}
	if b.watched.Load() {
		b.lastTaken.Set(float64(info.StartedAt.Unix()))
	}
	b.logger.Info("backup taken", "name", info.Name, "bytes", info.Bytes, "files", info.Files, "stream_seq", info.StreamSeq, "took", time.Since(start).Round(time.Millisecond))
	return info, nil
}

// scheduled takes a backup, then removes all but the newest keep the
// schedule took.
func (b *Backups) scheduled(ctx context.Context, now time.Time, keep int) error {
	if _, err := b.takeAs(ctx, store.ScheduledBackupName(now), now); err != nil {
		return err
	}
	removed, err := b.db.PruneBackups(ctx, keep)
	if len(removed) > 0 {
		b.logger.Info("old backups removed", "keep", keep, "removed", strings.Join(removed, ","))
	}
	return err
}

// take answers POST /api/v1/backups: 201 with the backup once it is taken.
// The backup goes on if the client leaves: ClickHouse's BACKUP is not to
// be cut short.
func (b *Backups) take(w http.ResponseWriter, r *http.Request) {
	info, err := b.Take(context.WithoutCancel(r.Context()), b.now())
	switch {
	case errors.Is(err, errTaking):
		problem.Write(w, problem.Details{Status: http.StatusConflict, Title: "A backup is being taken", Detail: "one backup at a time: try again when it is done", Instance: r.URL.Path})
	case errors.Is(err, store.ErrPositionPending):
		w.Header().Set("Retry-After", "5")
		problem.Write(w, problem.Details{Status: http.StatusServiceUnavailable, Title: "Not now: a replay of the stream is starting", Detail: err.Error() + "; try again in a few seconds", Instance: r.URL.Path})
	case errors.Is(err, store.ErrBackupOnCluster):
		problem.Write(w, problem.Details{Status: http.StatusNotImplemented, Title: "Backups of a cluster are ClickHouse's own", Detail: err.Error(), Instance: r.URL.Path})
	case err != nil:
		problem.Write(w, problem.Details{Status: http.StatusInternalServerError, Title: "Backup failed", Detail: err.Error(), Instance: r.URL.Path})
	default:
		ops.WriteJSONStatus(w, http.StatusCreated, info)
	}
}

// delete answers DELETE /api/v1/backups/{name}: 200 with the backup, now
// removed. Not while a backup is being taken (409): the one being written
// is a directory like the others.
func (b *Backups) delete(w http.ResponseWriter, r *http.Request) {
	if !b.taking.TryLock() {
		problem.Write(w, problem.Details{Status: http.StatusConflict, Title: "A backup is being taken", Detail: "try again when it is done", Instance: r.URL.Path})
		return
	}
	defer b.taking.Unlock()
	info, err := b.db.DeleteBackup(context.WithoutCancel(r.Context()), chi.URLParam(r, "name"))
	switch {
	case errors.Is(err, store.ErrNoBackup):
		problem.Write(w, problem.Details{Status: http.StatusNotFound, Title: "No such backup", Detail: err.Error(), Instance: r.URL.Path})
	case errors.Is(err, store.ErrBadBackupName):
		problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Not a backup's name", Detail: err.Error(), Instance: r.URL.Path})
	case errors.Is(err, store.ErrBackupOnCluster), errors.Is(err, store.ErrBackupOnServer):
		problem.Write(w, problem.Details{Status: http.StatusNotImplemented, Title: "Backups elsewhere", Detail: err.Error(), Instance: r.URL.Path})
	case err != nil:
		b.logger.Error("backup not removed", "name", info.Name, "err", err)
		problem.Write(w, problem.Details{Status: http.StatusInternalServerError, Title: "Backup not removed", Detail: err.Error(), Instance: r.URL.Path})
	default:
		b.logger.Info("backup removed", "name", info.Name)
		ops.WriteJSON(w, info)
	}
}

// BackupCLIConfig configures `otpscope backup create|list|delete`, a
// client of a running otpscope's API (the process that owns the engine
// takes the backup).
type BackupCLIConfig struct {
	APIFlags
	JSON bool
	// Name is the backup delete removes.
	Name string
}

// RegisterFlags registers the flags of `backup create` and `backup list`.
func (c *BackupCLIConfig) RegisterFlags(fs *flag.FlagSet) {
	c.APIFlags.Register(fs, "the otpscope or reporter API (its --admin-listen)")
	fs.BoolVar(&c.JSON, "json", false, "print the API's JSON answer")
	fs.StringVar(&c.Name, "name", "", "delete: the backup to remove, as otpscope backup list names it")
	flagenv.CommandLineOnly(fs, "json", "name") // which backup goes: never a leftover variable
}

// RunBackup runs action ("create", "list" or "delete") against the API.
func RunBackup(ctx context.Context, action string, cfg BackupCLIConfig, stdout io.Writer) error {
	method, want, path := http.MethodGet, http.StatusOK, "/api/v1/backups"
	switch action {
	case "create":
		method, want = http.MethodPost, http.StatusCreated
	case "list":
	case "delete":
		if cfg.Name == "" {
			return errors.New("otpscope backup delete: --name is required (otpscope backup list names the backups)")
		}
		method, path = http.MethodDelete, path+"/"+url.PathEscape(cfg.Name)
	default:
		return fmt.Errorf("unknown action %q: want create, list or delete", action)
	}
	// No timeout: a backup takes as long as it takes.
	raw, err := APICall{Method: method, API: cfg.API, Path: path, Token: cfg.Token,
		Command: "otpscope backup " + action, Want: want, Limit: 16 << 20}.Do(ctx)
	if err != nil {
		return err
	}
	if cfg.JSON {
		_, err = stdout.Write(raw)
		return err
	}
	var list []store.BackupInfo
	if action != "list" {
		var one store.BackupInfo
		err = json.Unmarshal(raw, &one)
		list = append(list, one)
	} else {
		var l BackupsResponse
		err = json.Unmarshal(raw, &l)
		list = l.Backups
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTARTED\tSTATUS\tBYTES\tSTREAM SEQ")
	for _, b := range list {
		status := b.Status
		if b.Error != "" {
			status += ": " + b.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", b.Name, b.StartedAt.Format(time.RFC3339), status, b.Bytes, b.StreamSeq)
	}
	return tw.Flush()
}

// Restore puts backup name back into the store cfg opens, in place of
// every table, with otpscope stopped (the embedded engine's data directory
// is the process's alone). The sink inserts the stream again from the
// backup's position when otpscope next starts.
func Restore(ctx context.Context, cfg store.Config, name string, logger *slog.Logger, stdout io.Writer) error {
	if err := store.FindBackup(cfg, name); err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg, logger)
	if err != nil {
		return fmt.Errorf("open the store: %w", err) // chdb.ErrInUse when otpscope runs
	}
	defer db.Close()
	b, err := db.Restore(ctx, name, time.Now())
	if err != nil {
		return err
	}
	from := fmt.Sprintf("stream sequence %d", b.StreamSeq+1)
	if b.StreamSeq == 0 {
		from = "shortly before " + b.StartedAt.Format(time.RFC3339)
	}
	// Whether otpscope's stream is still the backup's is known only once
	// it starts (its NATS is not running now): say what it does either way.
	if stream, created, ok, err := db.LastStream(ctx); err == nil && ok {
		from += fmt.Sprintf(" of stream %s created %s, or from its first message if otpscope's stream is another (a rebuilt machine's)", stream, created.Format(time.RFC3339Nano))
	} else {
		from += " (the backup does not say which stream that is in: the stream otpscope has is taken for it)"
	}
	_, err = fmt.Fprintf(stdout, "restored %s (taken %s); when otpscope starts, its sink inserts the stream again from %s\n", b.Name, b.StartedAt.Format(time.RFC3339), from)
	return err
}
