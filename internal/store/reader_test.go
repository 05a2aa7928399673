package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/store"
)

// A reader that may not change settings — a guest of the embedded
// endpoint, as `reporter report` connects — reads windows with more OTPs
// touched since the rollup job than a list holds under the default
// max_query_size: it names them by a subquery, to the answers of the
// facts, where the owner names them as a list.
func TestAGuestReadsPastItsTouchedList(t *testing.T) {
	noSlack(t)
	srv := chdbtest.Serve(t)
	owner, err := store.Connect(t.Context(), srv.DSN+"/"+srv.Database, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Close() })
	if err := owner.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	guest, err := store.ConnectReader(t.Context(), "http://"+srv.Addr+"/"+srv.Database, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { guest.Close() })

	late := rollUpDayBeforeLateFacts(t, owner)
	t0, _ := insertResends(t, owner)
	if _, err := owner.RefreshRollups(t.Context()); err != nil {
		t.Fatal(err)
	}
	// 8,000 OTPs delivered at 12:00 on the rolled-up day (delivery), and
	// the day's late facts: about 300 KB of ids as a list.
	insertDelivered(t, owner, 100000, 108000)
	if err := owner.Insert(t.Context(), &store.Batch{Deliveries: late}); err != nil {
		t.Fatal(err)
	}

	day := store.Window{From: rollStart, To: rollStart.AddDate(0, 0, 1)}
	raw := day
	raw.Raw = true
	want, err := owner.Channels(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, patched, err := store.PlannedHours(t.Context(), guest, day); err != nil || patched == 0 {
		t.Fatalf("the day plans %d patched hours for the guest (%v); want the touched hours patched", patched, err)
	}
	f := store.ResendFilter{From: t0, To: t0.Add(time.Hour)}
	wantResends, err := owner.ResendsFromFacts(t.Context(), f)
	if err != nil || wantResends.Decisions == 0 {
		t.Fatalf("ResendsFromFacts = %+v, %v; want decisions", wantResends, err)
	}
	same := func(who, what string, got, want any, err error) {
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if err != nil || string(a) != string(b) {
			t.Errorf("%s: %s = %s, %v; from the facts %s", who, what, a, err, b)
		}
	}
	for who, db := range map[string]*store.DB{"owner": owner, "guest": guest} {
		chs, err := db.Channels(t.Context(), day)
		same(who, "Channels over the day", chs, want, err)
		rep, err := db.Resends(t.Context(), f)
		same(who, "Resends", rep, wantResends, err)
	}
}
