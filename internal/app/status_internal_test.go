package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/reporter"
)

// Past half of the stream's bound taken by events the sink has not
// inserted, the status warns, with the share and the flags that set the
// bound; below it, or with the share unknown, it does not.
func TestStatusWarnsOfTheSinksBacklogNearTheBound(t *testing.T) {
	a := &App{}
	for _, tc := range []struct {
		share float64
		known bool
		want  string
	}{
		{0.63, true, "take up 63 % of the stream's bound"},
		{0.9999985, true, "take up 100 % of the stream's bound"},
		{0.5, true, ""},
		{0.49, true, ""},
		{0.9, false, ""},
	} {
		warns := strings.Join(a.warnings(status{at: time.Now(), sinkShare: tc.share, sinkShareKnown: tc.known}), "\n")
		switch {
		case tc.want == "" && warns != "":
			t.Errorf("share %v (known %v): warnings %q; want none", tc.share, tc.known, warns)
		case tc.want != "" && (!strings.Contains(warns, tc.want) || !strings.Contains(warns, "--stream-max-bytes")):
			t.Errorf("share %v: warnings %q; want %q and the flags of the bound", tc.share, warns, tc.want)
		}
	}
}

// otpscope status's sink line gives the share once it is known.
func TestStatusTextGivesTheSinksShareOfTheBound(t *testing.T) {
	for _, tc := range []struct {
		share *float64
		want  string
	}{
		{nil, "  sink    3 waiting, 40 being inserted\n"},
		{ptr(0.0036), "  sink    3 waiting, 40 being inserted: under 1 % of the stream's bound\n"},
		{ptr(0.0), "  sink    3 waiting, 40 being inserted: 0 % of the stream's bound\n"},
		{ptr(0.634), "  sink    3 waiting, 40 being inserted: 63 % of the stream's bound\n"},
	} {
		st := StatusResponse{Modules: []string{"reporter"}, Sink: &SinkStatus{Lag: 3, AckPending: 40, StreamBoundShare: tc.share}}
		if got := st.Text("http://127.0.0.1:8081", nil, nil); !strings.Contains(got, tc.want) {
			t.Errorf("share %v: status says\n%s\nwant the line %q", tc.share, got, tc.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// Until the leader's first reconciliation cycle its poller counts are
// zeros, not a count: the status says so rather than print them as facts.
// An older server, which does not say, is printed as before.
func TestStatusTextSaysThePollerHasNotCountedYet(t *testing.T) {
	for _, tc := range []struct {
		counted *bool
		want    string
	}{
		{ptr(false), "  poller  leading: no reconciliation cycle has run yet to count its OTPs\n"},
		{ptr(true), "  poller  leading: 0 OTPs tracked, 0 to reconcile, the oldest unsettled 0s\n"},
		{nil, "  poller  leading: 0 OTPs tracked, 0 to reconcile, the oldest unsettled 0s\n"},
	} {
		st := StatusResponse{Modules: []string{"poller"}, Poller: &PollerStatus{Leading: true, BacklogCounted: tc.counted}}
		if got := st.Text("http://127.0.0.1:8081", nil, nil); !strings.Contains(got, tc.want) {
			t.Errorf("counted %v: status says\n%s\nwant the line %q", tc.counted, got, tc.want)
		}
	}
}

// A poller that lost its lease with its NATS connection says so, not that
// another replica leads: a lone poller's operator went looking for one.
func TestStatusTextSaysThePollerCannotReachNATS(t *testing.T) {
	st := StatusResponse{Modules: []string{"poller"}, Poller: &PollerStatus{}, Stream: StreamStatus{Error: "stream TYNTEC_2FA: " + broker.ErrNotConnected.Error()}}
	if got := st.Text("http://127.0.0.1:8082", nil, nil); !strings.Contains(got, "  poller  not leading: this replica cannot reach NATS to hold the lease") {
		t.Errorf("a poller away from NATS: status says\n%s\nwant it cannot reach NATS", got)
	}
	st.Stream.Error = ""
	if got := st.Text("http://127.0.0.1:8082", nil, nil); !strings.Contains(got, "  poller  not leading: another replica calls tyntec") {
		t.Errorf("a poller connected, not leading: status says\n%s\nwant another replica leading", got)
	}
}

// A reporter whose sink's readings are unknown (its consumer unread for
// 30 s, or the sink waiting for the engine's lease) has a line saying so,
// not none; a process without the reporter has no sink line.
func TestStatusTextSaysTheSinkIsNotKnown(t *testing.T) {
	st := StatusResponse{Modules: []string{ModuleReporter}}
	if got := st.Text("http://127.0.0.1:8081", nil, nil); !strings.Contains(got, "  sink    backlog not known: not read yet, or unreadable now\n") {
		t.Errorf("a reporter without sink readings: status says\n%s\nwant the sink not known", got)
	}
	st.Modules = []string{ModuleIngest}
	if got := st.Text("http://127.0.0.1:8083", nil, nil); strings.Contains(got, "sink") {
		t.Errorf("ingest alone: status says\n%s\nwant no sink line", got)
	}
}

// The status lists the alert rules firing, as the console's "Firing now"
// does, or says none fire, or that they could not be read.
func TestStatusTextListsTheAlertsFiring(t *testing.T) {
	since := time.Date(2026, 12, 7, 6, 20, 15, 0, time.UTC)
	st := StatusResponse{Modules: []string{ModuleReporter}, Warnings: []string{}}
	for _, tc := range []struct {
		firing *Firing
		want   string
	}{
		{nil, ""},
		{&Firing{}, "  alerts  none firing\nno warnings\n"},
		{&Firing{Err: errors.New("GET /api/v1/alerts/firing: 503 Alert state unavailable")}, "  alerts  not read: GET /api/v1/alerts/firing: 503 Alert state unavailable\nno warnings\n"},
		{&Firing{Alerts: []reporter.FiringAlert{
			{Alert: reporter.Alert{Rule: reporter.RuleDeliveryRateLow, Channel: "SMS", Since: since, Value: 0.7996, Threshold: 0.8,
				Before: &events.AlertBefore{From: since.Add(-2 * time.Hour), To: since.Add(-time.Hour), Value: ptr(0.947)}}},
			{Alert: reporter.Alert{Rule: reporter.RuleFallbackRateHigh, Since: since.Add(time.Minute), To: since.Add(5 * time.Minute), Value: 0.25, Threshold: 0.2}, Kept: true},
			{Alert: reporter.Alert{Rule: reporter.RuleDeliverySlow, Channel: "VOICE", Since: since.Add(2 * time.Minute), Value: 12_000, Threshold: 10_000,
				SilencedBy: "3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33"}, SilencedUntil: ptr(since.Add(2 * time.Hour))},
		}}, "  alerts  3 firing:\n" +
			"    delivery_rate_low on SMS since 2026-12-07T06:20:15Z: 79.96%, threshold 80.0%; the hour before: 94.7%\n" +
			"    fallback_rate_high since 2026-12-07T06:21:15Z: 25.0%, threshold 20.0% (kept firing: it held last at 2026-12-07T06:25:15Z)\n" +
			"    delivery_slow on VOICE since 2026-12-07T06:22:15Z: 12.0 s, threshold 10.0 s (silenced until 2026-12-07T08:20:15Z: silence 3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33)\nno warnings\n"},
	} {
		got := st.Text("http://127.0.0.1:8081", tc.firing, nil)
		if tc.want == "" && strings.Contains(got, "alerts") || !strings.HasSuffix(got, tc.want) {
			t.Errorf("firing %+v: status says\n%s\nwant it to end\n%s", tc.firing, got, tc.want)
		}
	}
}

// The status lists the silences active and pending after the alerts, as
// otpscope alerts silences does (a silence of every rule pages nobody,
// firing or not); nothing of those ended, or when there are none.
func TestStatusTextListsTheSilences(t *testing.T) {
	at := time.Date(2026, 12, 7, 6, 20, 15, 0, time.UTC)
	st := StatusResponse{Modules: []string{ModuleReporter}, Warnings: []string{}}
	every := reporter.Silence{ID: "3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33", StartsAt: at, EndsAt: at.Add(240 * time.Hour), Comment: "tyntec maintenance", CreatedBy: "alice", State: reporter.SilenceActive}
	later := reporter.Silence{ID: "7a1b2c3d-0000-4000-8000-000000000002", Rule: reporter.RuleDeliveryRateLow, Channel: "SMS", StartsAt: at.Add(time.Hour), EndsAt: at.Add(3 * time.Hour),
		Comment: "carrier window", State: reporter.SilencePending}
	ended := reporter.Silence{ID: "7a1b2c3d-0000-4000-8000-000000000003", StartsAt: at.Add(-2 * time.Hour), EndsAt: at.Add(-time.Hour), Comment: "old", State: reporter.SilenceExpired}
	for _, tc := range []struct {
		firing *Firing
		want   string
	}{
		{&Firing{Silences: []reporter.Silence{ended}}, "  alerts  none firing\nno warnings\n"},
		{&Firing{Silences: []reporter.Silence{every, later, ended}}, "  alerts  none firing\n  silences  1 active, 1 pending:\n" +
			"    active   3f0c2a1e-9d2a-4f60-8c1b-2e7d5a9f1c33  every rule held until 2026-12-17T06:20:15Z (tyntec maintenance, by alice)\n" +
			"    pending  7a1b2c3d-0000-4000-8000-000000000002  delivery_rate_low on SMS to be held from 2026-12-07T07:20:15Z until 2026-12-07T09:20:15Z (carrier window)\nno warnings\n"},
		{&Firing{SilencesErr: errors.New("GET /api/v1/alerts/silences: 503 Silences unavailable")}, "  alerts  none firing\n  silences  not read: GET /api/v1/alerts/silences: 503 Silences unavailable\nno warnings\n"},
	} {
		if got := st.Text("http://127.0.0.1:8081", tc.firing, nil); !strings.HasSuffix(got, tc.want) {
			t.Errorf("silences %+v: status says\n%s\nwant it to end\n%s", tc.firing.Silences, got, tc.want)
		}
	}
}

// The status says the objective's figures in the reporter's words when
// one is set, nothing when none is, and that they were not read.
func TestStatusTextSaysTheObjective(t *testing.T) {
	st := StatusResponse{Modules: []string{ModuleReporter}, Warnings: []string{}}
	says := "99.31% of 12345 settled journeys delivered over the last 28 d (objective 99.00%): 31% of the error budget left (85 of 123.5 failures allowed)"
	for _, tc := range []struct {
		objective *Objective
		want      string
	}{
		{nil, "  alerts  none firing\nno warnings\n"},
		{&Objective{Answer: reporter.SLOResponse{Says: "no settled journeys over the last 28 d (no objective set: --slo-delivery-rate)"}}, "  alerts  none firing\nno warnings\n"},
		{&Objective{Answer: reporter.SLOResponse{Objective: ptr(0.99), Says: says}}, "  alerts  none firing\n  objective  " + says + "\nno warnings\n"},
		{&Objective{Err: errors.New("GET /api/v1/slo: 503 Analytics unavailable")}, "  alerts  none firing\n  objective  not read: GET /api/v1/slo: 503 Analytics unavailable\nno warnings\n"},
	} {
		if got := st.Text("http://127.0.0.1:8081", &Firing{}, tc.objective); !strings.HasSuffix(got, tc.want) {
			t.Errorf("objective %+v: status says\n%s\nwant it to end\n%s", tc.objective, got, tc.want)
		}
	}
}
