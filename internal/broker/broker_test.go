package broker_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/broker/brokertest"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/flagenv"
)

func message(i int) events.Message {
	ev := events.DeliveryStatus{
		Channel: events.ChannelSMS, Status: events.StatusDelivered, Source: events.SourceWebhook,
		OTPID:     fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
		Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	m, err := events.NewDeliveryMessage(&ev)
	if err != nil {
		panic(err)
	}
	return m
}

func TestPublishIsDurableAcrossRestart(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	const n = 500
	msgs := make([]events.Message, n)
	for i := range msgs {
		msgs[i] = message(i)
	}
	if err := b.Publish(t.Context(), msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	srv.Restart()
	brokertest.WaitFor(t, 10*time.Second, "reconnect", func() bool { return b.Ready(t.Context()) == nil })
	if got := brokertest.StreamMsgs(t, b); got != n {
		t.Fatalf("after restart the stream holds %d messages; want %d", got, n)
	}
	// The headers survive too: a downstream consumer reads CloudEvents attributes.
	cons, err := b.JetStream().OrderedConsumer(t.Context(), b.StreamName(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Headers().Get(events.HeaderSpecVersion); got != "1.0" {
		t.Errorf("ce-specversion = %q; want 1.0", got)
	}
	if got, want := msg.Headers().Get(events.HeaderMsgID), message(0).ID; got != want {
		t.Errorf("Nats-Msg-Id = %q; want %q", got, want)
	}
	// Nothing else rides along: every consumer parses every header.
	if v, ok := msg.Headers()["Nats-Expected-Stream"]; ok {
		t.Errorf("stored message carries Nats-Expected-Stream %v", v)
	}
}

// A message stored by another stream is not reported stored: the PubAck
// names the stream, and only ours counts.
func TestPublishStoredElsewhereFails(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	js := b.JetStream()
	if err := js.DeleteStream(t.Context(), b.StreamName()); err != nil {
		t.Fatal(err)
	}
	// In memory: the point is only which stream answers, and a file store
	// created on a loaded disk right after a delete failed now and then
	// ("error creating store for stream").
	other := jetstream.StreamConfig{Name: "OTHER", Subjects: []string{events.SubjectAll}, Storage: jetstream.MemoryStorage}
	if _, err := js.CreateStream(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	err := b.Publish(t.Context(), message(1))
	if !errors.Is(err, broker.ErrUnavailable) || !strings.Contains(err.Error(), `"OTHER"`) {
		t.Fatalf("Publish with the subjects caught by another stream = %v; want ErrUnavailable naming it", err)
	}
}

func TestDuplicatesAreDropped(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	for range 5 {
		if err := b.Publish(t.Context(), message(7)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	if got := brokertest.StreamMsgs(t, b); got != 1 {
		t.Fatalf("5 publishes of one id left %d messages; want 1", got)
	}
}

func TestPublishWhileDownIsUnavailable(t *testing.T) {
	srv := brokertest.NewServer(t)
	b := srv.Broker(t)
	srv.Stop()
	brokertest.WaitFor(t, 5*time.Second, "disconnect", func() bool { return b.Ready(t.Context()) != nil })
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := b.Publish(ctx, message(1)); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Publish with the server down = %v; want ErrUnavailable", err)
	}
	// The stream's state is not asked of a connection that is down: said
	// at once, as such, not as a deadline exceeded.
	start := time.Now()
	if _, _, err := b.StreamState(ctx); !errors.Is(err, broker.ErrNotConnected) || !strings.Contains(err.Error(), "RECONNECTING") || ctx.Err() != nil {
		t.Errorf("StreamState with the server down = %v after %v; want ErrNotConnected, naming the connection's state, before the deadline", err, time.Since(start))
	}
	srv.Start()
	brokertest.WaitFor(t, 10*time.Second, "reconnect", func() bool { return b.Ready(t.Context()) == nil })
	if err := b.Publish(t.Context(), message(1)); err != nil {
		t.Fatalf("Publish after restart: %v", err)
	}
	if _, _, err := b.StreamState(t.Context()); err != nil {
		t.Errorf("StreamState after restart: %v", err)
	}
}

// A publish whose acknowledgement never comes gives up after its timeout.
func TestPublishNewTimesOut(t *testing.T) {
	b := brokertest.NewServer(t).Broker(t)
	neverAcknowledge(t, b)
	start := time.Now()
	_, err := b.PublishNew(t.Context(), 200*time.Millisecond, message(1))
	took := time.Since(start)
	if !errors.Is(err, broker.ErrUnavailable) || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Fatalf("PublishNew without an acknowledgement = %v; want ErrUnavailable after the timeout", err)
	}
	if took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("PublishNew gave up after %v; want the 200ms timeout", took)
	}
	if n := b.PendingPubAcks(); n != 0 {
		t.Errorf("%d publishes still await a PubAck after the timeout; want 0", n)
	}
}

// neverAcknowledge makes b's publishes go unanswered: the stream is gone
// and a plain subscriber takes the messages without answering, as a
// server too busy to store them would.
func neverAcknowledge(t *testing.T, b *broker.Broker) {
	t.Helper()
	if err := b.JetStream().DeleteStream(t.Context(), b.StreamName()); err != nil {
		t.Fatal(err)
	}
	nc := brokertest.Conn(t, b)
	if _, err := nc.SubscribeSync(events.SubjectAll); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedOpenCreatesStream(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Sync = "always"
	cfg.Stream.DuplicateWindow = 3 * time.Minute
	b, err := broker.Open(t.Context(), cfg, "test", brokertest.Logger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close()
	if !b.Embedded() {
		t.Fatal("no embedded server with an empty URL")
	}
	s, err := b.JetStream().Stream(t.Context(), broker.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.Duplicates != 3*time.Minute || c.Storage != jetstream.FileStorage || len(c.Subjects) != 1 || c.Subjects[0] != "tyntec.2fa.>" {
		t.Errorf("stream config = %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	base := brokertest.Config(t)
	tests := []struct {
		name   string
		mutate func(*broker.Config)
		ok     bool
	}{
		{"defaults", func(*broker.Config) {}, true},
		{"sync always", func(c *broker.Config) { c.Sync = "always" }, true},
		{"sync interval", func(c *broker.Config) { c.Sync = "1s" }, true},
		{"sync nonsense", func(c *broker.Config) { c.Sync = "sometimes" }, false},
		{"bad listen", func(c *broker.Config) { c.Listen = "4222" }, false},
		{"no data dir", func(c *broker.Config) { c.DataDir = "" }, false},
		{"external needs no data dir", func(c *broker.Config) { c.URL = "nats://x:4222"; c.DataDir = "" }, true},
		{"zero window", func(c *broker.Config) { c.Stream.DuplicateWindow = 0 }, false},
		{"six replicas", func(c *broker.Config) { c.Stream.Replicas = 6 }, false},
		{"max age below window", func(c *broker.Config) { c.Stream.MaxAge = time.Second }, false},
		{"negative max age", func(c *broker.Config) { c.Stream.MaxAge = -time.Hour }, false},
		{"negative max bytes", func(c *broker.Config) { c.Stream.MaxBytes = -1 }, false},
		{"cluster without name", func(c *broker.Config) { c.ClusterName = "c"; c.ClusterListen = "127.0.0.1:6222" }, false},
		{"cluster without shared passwords", func(c *broker.Config) {
			c.ClusterName, c.ClusterListen, c.ServerName = "c", "127.0.0.1:6222", "n1"
		}, false},
		{"cluster with shared passwords", func(c *broker.Config) {
			c.ClusterName, c.ClusterListen, c.ServerName = "c", "127.0.0.1:6222", "n1"
			c.Password, c.ReaderPassword = "p1", "p2"
		}, true},
		{"reader is the service user", func(c *broker.Config) { c.User, c.ReaderUser = "a", "a" }, false},
		{"several nats urls", func(c *broker.Config) { c.URL = "nats://a:4222, tls://b:4222,c:4222,wss://d" }, true},
		{"http nats url", func(c *broker.Config) { c.URL = "nats://a:4222,http://b:8222" }, false},
		{"https nats url", func(c *broker.Config) { c.URL = "https://u:p@b:4222" }, false},
	}
	for _, tt := range tests {
		c := base
		tt.mutate(&c)
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// An http(s) --nats-url is refused by its flag, without its password:
// nats.go would dial it and wait forever for an HTTP port's answer.
func TestConfigRefusesHTTPNATSURL(t *testing.T) {
	c := brokertest.Config(t)
	c.URL = "nats://a:4222,http://otpscope:secret@nats:8222"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "nats-url") || !strings.Contains(err.Error(), "nats://") || strings.Contains(err.Error(), "secret") {
		t.Errorf("Validate() = %v; want nats-url refused, nats:// asked for, no password", err)
	}
}

// A --nats-url that does not parse is refused by its flag, unquoted: the
// connection's error quoted it whole, password and all, after `config`
// had called it ok.
func TestConfigRefusesUnreadableNATSURL(t *testing.T) {
	c := brokertest.Config(t)
	c.URL = "nats://u:natsPW6@127.0.0.1:xx"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "nats-url") || strings.Contains(err.Error(), "natsPW6") {
		t.Errorf("Validate() = %v; want nats-url refused without its password", err)
	}
}

// A stream setting counts as given when its flag or variable is set, and
// as the default otherwise (EnsureStream keeps an existing stream's own).
func TestStreamSettingsGiven(t *testing.T) {
	parse := func(args []string, environ ...string) broker.StreamConfig {
		t.Helper()
		var c broker.Config
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		c.RegisterFlags(fs, "")
		if err := flagenv.Parse(fs, args, flagenv.Lookup(environ)); err != nil {
			t.Fatal(err)
		}
		return c.Stream
	}
	if got := parse(nil).Defaulted; got != (broker.StreamSettings{DuplicateWindow: true, Replicas: true, MaxAge: true, MaxBytes: true}) {
		t.Errorf("no flags: defaulted %+v; want all", got)
	}
	got := parse([]string{"--stream-replicas", "3"}, "OTPSCOPE_STREAM_MAX_AGE=720h")
	if got.Defaulted != (broker.StreamSettings{DuplicateWindow: true, MaxBytes: true}) || got.Replicas != 3 || got.MaxAge != 720*time.Hour {
		t.Errorf("--stream-replicas 3, OTPSCOPE_STREAM_MAX_AGE=720h: %+v; want both given and applied", got)
	}
}

// The stream keeps at most --stream-max-bytes, the oldest messages going
// first, while webhooks go on being stored; unset, the embedded server's
// stream keeps StoreShare of its store, and a stream on an external
// server keeps its own bound.
func TestStreamMaxBytes(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Stream.Defaulted.MaxBytes = true
	b, err := broker.Open(t.Context(), cfg, "test", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	info := func(b *broker.Broker) *jetstream.StreamInfo {
		t.Helper()
		s, err := b.JetStream().Stream(t.Context(), broker.DefaultStreamName)
		if err != nil {
			t.Fatal(err)
		}
		i, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	store := b.Server().JetStreamConfig().MaxStore
	if got := info(b).Config; got.MaxBytes != int64(float64(store)*broker.StoreShare) || got.Discard != jetstream.DiscardOld {
		t.Errorf("unset on the embedded server: max bytes %d, discard %v; want %d (%.0f%% of the store's %d), old first", got.MaxBytes, got.Discard, int64(float64(store)*broker.StoreShare), broker.StoreShare*100, store)
	}
	b.Close()

	cfg.Stream.Defaulted.MaxBytes, cfg.Stream.MaxBytes = false, 64<<10
	b, err = broker.Open(t.Context(), cfg, "test", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 300 { // ~300 bytes each
		if err := b.Publish(t.Context(), message(i)); err != nil {
			t.Fatalf("publish %d past the bound: %v", i, err)
		}
	}
	if got := info(b); got.Config.MaxBytes != 64<<10 || got.State.Bytes > 64<<10 || got.State.FirstSeq == 1 || got.State.LastSeq != 300 {
		t.Errorf("given 64 KiB after 300 messages: max bytes %d, holds %d bytes, seq %d–%d; want the bound kept, the oldest gone, the newest stored",
			got.Config.MaxBytes, got.State.Bytes, got.State.FirstSeq, got.State.LastSeq)
	}

	ext := brokertest.NewServer(t)
	eb := ext.Broker(t) // a Config built in code gives every setting: no bound
	if got := info(eb).Config.MaxBytes; got != -1 {
		t.Fatalf("external stream created with no bound: max bytes %d; want -1", got)
	}
	ecfg := ext.Config()
	ecfg.URL = ext.URL()
	ecfg.Stream.Defaulted.MaxBytes = true
	onDefaults, err := broker.Open(t.Context(), ecfg, "on-defaults", brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer onDefaults.Close()
	if got := info(onDefaults).Config.MaxBytes; got != -1 {
		t.Errorf("a process on defaults against an external server: max bytes %d; want the stream's own (-1)", got)
	}
}
