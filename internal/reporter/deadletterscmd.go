package reporter

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpscope/otpscope/internal/flagenv"
	"github.com/otpscope/otpscope/internal/store"
)

// DefaultAPI is the API of an all-in-one running on this machine, which
// the command-line clients (deadletters, backup, status) call by default.
const DefaultAPI = "http://127.0.0.1:8081"

// DeadLettersCLIConfig configures `otpscope deadletters list|replay|delete`, a
// client of the dead-letter API: the process that runs the sink owns
// ClickHouse (the embedded endpoint is read-only to others) and NATS.
type DeadLettersCLIConfig struct {
	APIFlags
	Source  string
	IDs     []string
	All     bool // replay: every dead letter never replayed
	Pending bool // list: only those never replayed
	Limit   int
	JSON    bool
}

// RegisterFlags registers the flags of `deadletters list`, `replay` and `delete`.
func (c *DeadLettersCLIConfig) RegisterFlags(fs *flag.FlagSet) {
	c.APIFlags.Register(fs, "the otpscope or reporter API (its --admin-listen)")
	fs.StringVar(&c.Source, "source", "", "only dead letters of this source: ingest, sink, poller…")
	fs.Func("id", "a dead letter's id (repeatable)", func(s string) error { c.IDs = append(c.IDs, s); return nil })
	fs.BoolVar(&c.All, "all", false, "replay: every dead letter never replayed")
	fs.BoolVar(&c.Pending, "pending", false, "list: only dead letters never replayed")
	fs.IntVar(&c.Limit, "limit", 100, "list: at most this many, newest first")
	fs.BoolVar(&c.JSON, "json", false, "print the API's JSON answer")
	// Which dead letters, and how to print them, come from the command line
	// alone: a stray OTPSCOPE_ALL must not make a replay of one a replay
	// of all. Where the API is, and its token, may come from the environment.
	flagenv.CommandLineOnly(fs, "source", "id", "all", "pending", "limit", "json")
}

// Check refuses, before anything is called, what action would not do as
// the command line says: an action other than list, replay or delete, a
// replay naming nothing or both ids and --all (the ids would win,
// silently), a delete naming no id, a flag of another action (it would be
// ignored), a --limit out of range.
// set holds the flags the command line gave.
func (c *DeadLettersCLIConfig) Check(action string, set map[string]bool) error {
	var others []string
	switch action {
	case "list":
		if c.Limit < 1 || c.Limit > store.MaxDeadLettersListed {
			return fmt.Errorf("--limit %d: want 1 … %d", c.Limit, store.MaxDeadLettersListed)
		}
		others = []string{"all"}
	case "replay":
		if c.All == (len(c.IDs) > 0) {
			return fmt.Errorf("replay: give --id ID… or --all, one of them (%w)", ErrDeadLettersUsage)
		}
		others = []string{"pending", "limit"}
	case "delete":
		// By id only: a delete is for good, so it names what it deletes.
		if len(c.IDs) == 0 || len(c.IDs) > store.MaxDeadLettersListed {
			return fmt.Errorf("delete: give --id ID… (1 … %d of them) (%w)", store.MaxDeadLettersListed, ErrDeadLettersUsage)
		}
		others = []string{"all", "pending", "limit", "source"}
	default:
		return ErrDeadLettersUsage
	}
	for _, f := range others {
		if set[f] {
			return fmt.Errorf("--%s is not a flag of %s (%w)", f, action, ErrDeadLettersUsage)
		}
	}
	return nil
}

// RunDeadLetters runs action ("list", "replay" or "delete") against the API.
func RunDeadLetters(ctx context.Context, action string, cfg DeadLettersCLIConfig, stdout io.Writer) error {
	call := APICall{API: cfg.API, Token: cfg.Token, Command: "otpscope deadletters " + action, Timeout: 5 * time.Minute, Limit: 256 << 20}
	switch action {
	case "list":
		q := url.Values{"limit": {strconv.Itoa(cfg.Limit)}}
		if cfg.Source != "" {
			q.Set("source", cfg.Source)
		}
		if cfg.Pending {
			q.Set("pending", "true")
		}
		for _, id := range cfg.IDs {
			q.Add("id", id)
		}
		call.Method, call.Path = http.MethodGet, "/api/v1/deadletters?"+q.Encode()
	case "replay":
		if len(cfg.IDs) == 0 && !cfg.All {
			return errNothingSelected
		}
		call.Body, _ = json.Marshal(ReplayRequest{IDs: cfg.IDs, All: cfg.All, Source: cfg.Source})
		call.Method, call.Path = http.MethodPost, "/api/v1/deadletters/replay"
	case "delete":
		if len(cfg.IDs) == 0 {
			return errNothingSelected
		}
		call.Method, call.Path = http.MethodDelete, "/api/v1/deadletters?"+url.Values{"id": cfg.IDs}.Encode()
	default:
		return fmt.Errorf("unknown action %q: want list, replay or delete", action)
	}
	raw, err := call.Do(ctx)
	if err != nil {
		return err
	}
	if action == "delete" {
		return printDeleted(raw, cfg.JSON, stdout)
	}
	if action == "list" {
		if cfg.JSON {
			_, err = stdout.Write(raw)
			return err
		}
		var l DeadLettersResponse
		if err := json.Unmarshal(raw, &l); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		printDeadLetters(tw, l.DeadLetters)
		return tw.Flush()
	}
	var res ReplayResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	if cfg.JSON {
		_, err = stdout.Write(raw)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSOURCE\tRESULT")
		for _, o := range res.Replayed {
			left := ""
			if len(o.Left) > 0 {
				left = fmt.Sprintf("; %d element(s) left out, still invalid: %s", len(o.Left), strings.Join(o.Left, "; "))
			}
			fmt.Fprintf(tw, "%s\t%s\treplayed as %d event(s)%s\n", o.ID, o.Source, o.Messages, left)
		}
		for _, o := range res.Skipped {
			fmt.Fprintf(tw, "%s\t%s\tskipped: %s\n", o.ID, o.Source, o.Skipped)
		}
		fmt.Fprintf(tw, "%d replayed, %d skipped\n", len(res.Replayed), len(res.Skipped))
		err = tw.Flush()
	}
	if err != nil {
		return err
	}
	return notReplayed(cfg.IDs, res)
}

// notReplayed is an error (the command exits 1) when a dead letter named
// by id is unknown or could not be replayed, so that a script learns of a
// mistyped id; one replayed before is fine, as is what --all skips.
func notReplayed(ids []string, res ReplayResult) error {
	if len(ids) == 0 {
		return nil
	}
	n := 0
	for _, o := range res.Skipped {
		if o.ReplayedAt == nil {
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("%d of the %d dead letters named not replayed", n, len(ids))
	}
	return nil
}

// printDeleted prints a delete's answer; one named and not found is an
// error (the command exits 1), as for a replay.
func printDeleted(raw []byte, asJSON bool, stdout io.Writer) error {
	var res DeleteDeadLettersResponse
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	var err error
	if asJSON {
		_, err = stdout.Write(raw)
	} else {
		for _, id := range res.Deleted {
			fmt.Fprintf(stdout, "%s\tdeleted\n", id)
		}
		for _, id := range res.Missing {
			fmt.Fprintf(stdout, "%s\tnot found\n", id)
		}
		_, err = fmt.Fprintf(stdout, "%d deleted, %d not found\n", len(res.Deleted), len(res.Missing))
	}
	if err == nil && len(res.Missing) > 0 {
		err = fmt.Errorf("%d of the %d dead letters named not found", len(res.Missing), len(res.Deleted)+len(res.Missing))
	}
	return err
}

func printDeadLetters(w io.Writer, recs []store.DeadLetterRecord) {
	fmt.Fprintln(w, "ID\tSOURCE\tRECEIVED\tREPLAYED\tSUBJECT/FIELD\tREASON")
	for _, r := range recs {
		replayed := "-"
		if r.ReplayedAt != nil {
			replayed = r.ReplayedAt.Format(time.RFC3339)
		}
		reason := r.Reason
		if len(reason) > 80 {
			reason = reason[:77] + "..."
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Source, r.ReceivedAt.Format(time.RFC3339), replayed, r.Field, reason)
	}
}

// ErrDeadLettersUsage is the usage line of `otpscope deadletters`.
var ErrDeadLettersUsage = errors.New("usage: otpscope deadletters list|replay|delete [flags] (replay: --id ID… or --all; --source SOURCE; delete: --id ID…)")
