package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/store"
)

const (
	otpM1  = "bbbbbbbb-0000-4000-8000-000000000001" // SMS after a failed silent auth (login-1)
	otpM2  = "bbbbbbbb-0000-4000-8000-000000000002" // SMS then VOICE after a denied push (login-2)
	pushP2 = "cccccccc-0000-4000-8000-000000000002"
)

// methodMessages are the messages of a mixed story, as ingest and the
// poller publish them: silent auth and push in front of OTPs, joined by
// correlation ids.
func methodMessages(t *testing.T) []events.Message {
	t.Helper()
	var msgs []events.Message
	add := func(m events.Message, err error) {
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	silent := func(id, corr, result, errCode string, start, end time.Duration) {
		o := events.SilentOutcome{AttemptID: id, CorrelationID: corr, ProfileID: "prof-1", StartedAt: t0.Add(start), FinishedAt: t0.Add(end),
			Result: result, Error: errCode, LoginHintHash: "h", ReceivedAt: t0.Add(end)}
		o.UnknownResult = !slices.Contains([]string{events.SilentVerified, events.SilentNotVerified, events.SilentError}, result)
		add(events.NewSilentOutcomeMessage(&o))
	}
	push := func(id, corr, status, source string, created, updated time.Duration) {
		p := events.PushEvent{UUID: id, CorrelationID: corr, Status: status, CreatedAt: t0.Add(created), UpdatedAt: t0.Add(updated),
			SecondsToExpire: 300, Source: source, ReceivedAt: t0.Add(updated)}
		add(events.NewPushMessage(&p))
	}
	delivery := func(otp, ch, st string, at time.Duration, code string) {
		d := events.DeliveryStatus{OTPID: otp, ProfileID: "prof-1", Channel: events.Channel(ch), Status: events.Status(st),
			Timestamp: t0.Add(at), ReceivedAt: t0.Add(at), Source: events.SourceWebhook}
		if code != "" {
			d.Error = &events.DeliveryError{Code: code}
		}
		add(events.NewDeliveryMessage(&d))
	}
	track := func(otp, corr string, at time.Duration) {
		tr := events.Track{OTPID: otp, API: "v4", CorrelationID: corr, At: t0.Add(at)}
		add(events.NewTrackMessage(&tr))
	}

	silent("sa-1", "login-1", events.SilentNotVerified, "", 0, time.Second)
	track(otpM1, "login-1", 2*time.Second)
	delivery(otpM1, "SMS", "DISPATCHED", 2*time.Second, "")
	delivery(otpM1, "SMS", "DELIVERED", 5*time.Second, "")

	push(pushP2, "login-2", events.PushPending, events.SourceWebhook, 0, 0)
	// The settling callback without hiddenDetails: ingest links the request
	// to its own uuid, which must not split it from login-2.
	push(pushP2, pushP2, events.PushDenied, events.SourceWebhook, 0, 10*time.Second)
	track(otpM2, "login-2", 11*time.Second)
	delivery(otpM2, "SMS", "DISPATCHED", 11*time.Second, "")
	delivery(otpM2, "SMS", "UNDELIVERABLE", 12*time.Second, "tyntec::sms::1")
	delivery(otpM2, "VOICE", "DISPATCHED", 13*time.Second, "")
	delivery(otpM2, "VOICE", "DELIVERED", 20*time.Second, "")

	silent("sa-3", "", events.SilentVerified, "", 0, 1500*time.Millisecond)
	silent("sa-4", "", events.SilentError, "no_data_session", 0, 500*time.Millisecond)
	silent("sa-5", "", "maybe", "", 0, time.Second)
	push("p-6", "", events.PushPending, events.SourceWebhook, time.Second, time.Second)
	push("p-6", "", events.PushExpired, events.SourceWebhook, time.Second, 301*time.Second)
	push("p-7", "", events.PushApproved, events.SourcePoll, 0, 7*time.Second) // its callbacks were lost
	return msgs
}

// insertShuffled adds every message twice, in two batches, the second
// reversed: duplicates and reordering must change nothing.
func insertShuffled(t *testing.T, db *store.DB, msgs []events.Message) {
	t.Helper()
	for round := range 2 {
		var b store.Batch
		for i := range msgs {
			m := msgs[i]
			if round == 1 {
				m = msgs[len(msgs)-1-i]
			}
			if err := b.Add(m.Subject, m.ID, m.Data, uint64(i+1)); err != nil {
				t.Fatalf("Add(%s): %v", m.Subject, err)
			}
		}
		if err := db.Insert(t.Context(), &b); err != nil {
			t.Fatalf("Insert: %v", err)
		}
	}
}

func TestMethodsAsChannels(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		insertShuffled(t, db, methodMessages(t))
		if n := count(t, db, "SELECT count() FROM silent_auth_outcomes FINAL WHERE login_hint_hash = 'h'"); n != 4 {
			t.Errorf("silent_auth_outcomes holds %d attempts; want 4", n)
		}
		if n := count(t, db, "SELECT count() FROM push_events FINAL"); n != 5 {
			t.Errorf("push_events holds %d statuses; want 5", n)
		}
		var got [2][]store.ChannelStats
		for i, raw := range []bool{false, true} {
			chs, err := db.Channels(t.Context(), store.Window{From: t0, To: t0.Add(time.Hour), Raw: raw})
			if err != nil {
				t.Fatalf("Channels(raw=%v): %v", raw, err)
			}
			got[i] = chs
			by := map[string]store.ChannelStats{}
			for _, c := range chs {
				by[c.Channel] = c
			}
			s := by["SILENT"]
			if s.Attempts != 4 || s.Delivered != 1 || s.Failed != 2 || s.Undeliverable != 2 || s.Pending != 1 || s.UnknownStatus != 1 ||
				s.LatencyMS == nil || s.LatencyMS.P50 != 1500 || s.DeliveryRate == nil || *s.DeliveryRate != 1.0/3 {
				t.Errorf("SILENT(raw=%v) = %s", raw, js(s))
			}
			if want := []store.ErrorCount{{Code: "no_data_session", Count: 1}, {Code: "not_verified", Count: 1}}; !slices.Equal(s.Errors, want) {
				t.Errorf("SILENT errors(raw=%v) = %+v; want %+v", raw, s.Errors, want)
			}
			p := by["PUSH"]
			if p.Attempts != 3 || p.Delivered != 1 || p.Failed != 2 || p.Undeliverable != 1 || p.TimedOut != 1 || p.Pending != 0 ||
				p.RecoveredByPolling != 1 || p.LatencyMS == nil || p.LatencyMS.P50 != 7000 {
				t.Errorf("PUSH(raw=%v) = %s", raw, js(p))
			}
			if want := []store.ErrorCount{{Code: "denied", Count: 1}, {Code: "expired", Count: 1}}; !slices.Equal(p.Errors, want) {
				t.Errorf("PUSH errors(raw=%v) = %+v; want %+v", raw, p.Errors, want)
			}
			if sms := by["SMS"]; sms.Attempts != 2 || sms.Delivered != 1 || sms.Failed != 1 {
				t.Errorf("SMS(raw=%v) = %s", raw, js(sms))
			}
		}
		if js(got[0]) != js(got[1]) {
			t.Errorf("the views and the raw tables disagree:\n%s\n%s", js(got[0]), js(got[1]))
		}

		// The views' facts are the records' Fact (the live stream's mapping).
		facts := map[string]bool{}
		rows, err := db.Conn().Query(t.Context(), `SELECT toString(otp_id), toString(channel), e.1, e.3, e.4, e.5
FROM channel_events ARRAY JOIN events AS e WHERE channel IN ('SILENT', 'PUSH')`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var otp, ch, st, code string
			var at time.Time
			var unknown uint8
			if err := rows.Scan(&otp, &ch, &at, &st, &code, &unknown); err != nil {
				t.Fatal(err)
			}
			facts[fmt.Sprint(otp, ch, at.UnixMilli(), st, code, unknown == 1)] = true
		}
		rows.Close()
		for _, m := range methodMessages(t) {
			var f events.DeliveryStatus
			switch sub, _ := events.ParseSubject(m.Subject); sub.Kind {
			case events.KindSilent:
				var o events.SilentOutcome
				_ = json.Unmarshal(m.Data, &o)
				f = o.Fact()
			case events.KindPush:
				var p events.PushEvent
				_ = json.Unmarshal(m.Data, &p)
				f = p.Fact()
			default:
				continue
			}
			code := ""
			if f.Error != nil {
				code = f.Error.Code
			}
			if key := fmt.Sprint(f.OTPID, f.Channel, f.Timestamp.UnixMilli(), f.Status, code, f.UnknownStatus); !facts[key] {
				t.Errorf("%s: Fact %s is not among the view's facts %v", m.Subject, key, facts)
			}
		}
	})
}

// Journeys are keyed by correlationId: a failed silent auth or push and the
// OTP tracked with the same id are one login, whose path starts with the
// method.
func TestJourneysAcrossMethods(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		insertShuffled(t, db, methodMessages(t))
		for _, raw := range []bool{false, true} {
			fb, err := db.Fallback(t.Context(), store.Window{From: t0, To: t0.Add(time.Hour), Raw: raw})
			if err != nil {
				t.Fatalf("Fallback(raw=%v): %v", raw, err)
			}
			// login-1, login-2, and sa-3, sa-4, sa-5, p-6, p-7 alone.
			want := store.Outcomes{DeliveredPrimary: 2, DeliveredFallback: 2, Failed: 2, Pending: 1}
			if fb.OTPs != 7 || fb.FallbackOTPs != 2 || fb.Outcomes != want || fb.Resends != 0 {
				t.Errorf("Fallback(raw=%v) = %s; want 7 journeys, 2 with fallback, outcomes %+v", raw, js(fb), want)
			}
			// SILENT: sa-3 verified, sa-4 an error, sa-5 unknown (pending);
			// PUSH: p-7 approved, p-6 expired.
			wantPaths := "[SILENT: 3 journeys, 1 delivered, 1 failed, 1 pending, rate 0.5" +
				" PUSH: 2 journeys, 1 delivered, 1 failed, 0 pending, rate 0.5" +
				" PUSH>SMS>VOICE: 1 journeys, 1 delivered, 0 failed, 0 pending, rate 1" +
				" SILENT>SMS: 1 journeys, 1 delivered, 0 failed, 0 pending, rate 1]"
			if fmt.Sprint(fb.Paths) != wantPaths {
				t.Errorf("paths(raw=%v) = %+v; want %+v", raw, fb.Paths, wantPaths)
			}
			// Time to deliver: 1.5 s, 7 s, SILENT>SMS 5 s, PUSH>SMS>VOICE 20 s.
			if fb.TimeToDeliverMS == nil || fb.TimeToDeliverMS.P95 != 20000 {
				t.Errorf("time to deliver(raw=%v) = %+v; want p95 20000", raw, fb.TimeToDeliverMS)
			}
			fb, err = db.Fallback(t.Context(), store.Window{From: t0, To: t0.Add(time.Hour), Raw: raw, Channel: "PUSH"})
			if err != nil || fb.OTPs != 3 || fb.FallbackOTPs != 1 {
				t.Errorf("Fallback(primary PUSH, raw=%v) = %s, %v; want 3 journeys, 1 fallback", raw, js(fb), err)
			}
		}
	})
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Late method facts and late journey links reach rolled-up days: the
// rollup job re-rolls the days they touch, so the rollups keep equal to
// the raw tables.
func TestRollupsWithMethods(t *testing.T) {
	slack := store.RollupSlack
	store.RollupSlack = 0
	defer func() { store.RollupSlack = slack }()
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		store.SetRollupClock(db, func() time.Time {
			var newest time.Time
			q := `SELECT greatest((SELECT max(inserted_at) FROM delivery_events), (SELECT max(inserted_at) FROM silent_auth_outcomes),
    (SELECT max(inserted_at) FROM push_events), (SELECT max(inserted_at) FROM journey_links))`
			if err := db.Conn().QueryRow(t.Context(), q).Scan(&newest); err != nil {
				t.Errorf("newest row: %v", err)
			}
			return newest.Add(time.Millisecond)
		})
		var early, late []events.Message
		for _, m := range methodMessages(t) {
			// The poller's late read of p-7 and the late /otps/track of otpM2.
			if m.Header.Get(events.HeaderSubject) == "p-7" || (m.Subject == events.SubjectTrack && m.Header.Get(events.HeaderSubject) == otpM2) {
				late = append(late, m)
				continue
			}
			early = append(early, m)
		}
		if len(late) != 2 {
			t.Fatalf("%d late messages; want 2", len(late))
		}
		w := store.Window{From: t0.Add(-24 * time.Hour), To: t0.Add(48 * time.Hour)}
		same := func(when string) {
			t.Helper()
			raw := w
			raw.Raw = true
			chs, err1 := db.Channels(t.Context(), w)
			rawChs, err2 := db.Channels(t.Context(), raw)
			fb, err3 := db.Fallback(t.Context(), w)
			rawFB, err4 := db.Fallback(t.Context(), raw)
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				t.Fatal(err)
			}
			if js(chs) != js(rawChs) || js(fb) != js(rawFB) {
				t.Errorf("%s: rollups differ from the raw tables:\n%s\n%s\n%s\n%s", when, js(chs), js(rawChs), js(fb), js(rawFB))
			}
		}
		insertShuffled(t, db, early)
		if days, err := hoursOf(db.RefreshRollups(t.Context())); err != nil || len(days) == 0 {
			t.Fatalf("RefreshRollups = %v, %v; want the method hours rolled up", days, err)
		}
		same("rolled up")
		insertShuffled(t, db, late)
		// Before the job: the hours the late read and link marked are
		// patched, the link's whole journey computed live.
		if _, _, patched, err := store.PlannedHours(t.Context(), db, w); err != nil || patched == 0 {
			t.Errorf("after the late facts, %d hours patched (%v); want the marked ones", patched, err)
		}
		same("late facts, before the job")
		if days, err := hoursOf(db.RefreshRollups(t.Context())); err != nil || len(days) == 0 {
			t.Fatalf("RefreshRollups after late facts = %v, %v; want the hours the late facts marked (schema 0011) rolled up again", days, err)
		}
		same("late facts rolled up")
		fb, _ := db.Fallback(t.Context(), w)
		if !slices.ContainsFunc(fb.Paths, func(p store.PathStats) bool { return p.Path == "PUSH>SMS>VOICE" }) {
			t.Errorf("paths after the late link = %+v; want PUSH>SMS>VOICE", fb.Paths)
		}
	})
}
