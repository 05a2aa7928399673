package tyntecsim_test

import (
	"testing"
	"time"

	"github.com/otpscope/otpscope/internal/tyntec"
	"github.com/otpscope/otpscope/internal/tyntecsim"
)

// BenchmarkDelivery measures accepting OTPs while the engine delivers their
// webhooks in the background (the run waits for delivery before it ends).
func BenchmarkDelivery(b *testing.B) {
	_, hookURL := newReceiver(b, nil)
	sim, err := tyntecsim.New(tyntecsim.Config{Seed: 1, TimeScale: 1e6, OTPExpiry: time.Hour, Callbacks: []tyntec.NewCallbackConfig{{URL: hookURL}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := sim.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	for b.Loop() {
		if _, err := sim.Send(tyntec.NewOTPRequest{To: "+491700000000"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := sim.WaitIdle(b.Context()); err != nil {
		b.Fatal(err)
	}
}
