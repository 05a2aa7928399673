// Command benthos is the Benthos baseline of bench/wrk/run.sh: Benthos' core
// (http_server input, pipelines, metrics, logging) with one output plugin of
// our own, nats_jetstream_sync, that publishes each message synchronously to
// JetStream with nats.go the way Benthos' nats_jetstream output does
// (PublishMsg per message, up to max_in_flight at once). The NATS outputs of
// Benthos live in redpanda-data/connect, whose licence otpscope does not
// take on; this stand-in is the few lines that output needs.
//
// It is a module of its own so that otpscope's go.mod never gains Benthos.
//
//	go run . -c config.yaml
package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

func main() {
	spec := service.NewConfigSpec().
		Summary("Publishes each message to NATS JetStream and waits for its PubAck.").
		Fields(
			service.NewStringField("url"),
			service.NewStringField("subject"),
			service.NewStringField("user").Default(""),
			service.NewStringField("password").Default("").Secret(),
			service.NewOutputMaxInFlightField().Default(1024),
		)
	err := service.RegisterOutput("nats_jetstream_sync", spec, func(conf *service.ParsedConfig, _ *service.Resources) (service.Output, int, error) {
		var o jsOutput
		var err error
		if o.url, err = conf.FieldString("url"); err != nil {
			return nil, 0, err
		}
		if o.subject, err = conf.FieldString("subject"); err != nil {
			return nil, 0, err
		}
		if o.user, err = conf.FieldString("user"); err != nil {
			return nil, 0, err
		}
		if o.password, err = conf.FieldString("password"); err != nil {
			return nil, 0, err
		}
		n, err := conf.FieldMaxInFlight()
		return &o, n, err
	})
	if err != nil {
		panic(err)
	}
	service.RunCLI(context.Background())
}

type jsOutput struct {
	url, subject, user, password string
	nc                           *nats.Conn
	js                           jetstream.JetStream
}

func (o *jsOutput) Connect(context.Context) error {
	var opts []nats.Option
	if o.user != "" {
		opts = append(opts, nats.UserInfo(o.user, o.password))
	}
	nc, err := nats.Connect(o.url, opts...)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return err
	}
	o.nc, o.js = nc, js
	return nil
}

// Write publishes synchronously, as Benthos' nats_jetstream output does:
// the HTTP request is answered once this returns.
func (o *jsOutput) Write(ctx context.Context, m *service.Message) error {
	b, err := m.AsBytes()
	if err != nil {
		return err
	}
	// Like Benthos' output by default: no metadata as headers.
	msg := nats.NewMsg(o.subject)
	msg.Data = b
	if _, err := o.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

func (o *jsOutput) Close(context.Context) error {
	if o.nc != nil {
		o.nc.Close()
	}
	return nil
}
