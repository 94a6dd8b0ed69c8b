package sim

import (
	"context"
	"errors"
	"slices"
	"testing"

	"labelstation/board"
)

func TestSimBoard(t *testing.T) {
	b := New(Options{Serial: "SIM-0042", Inputs: []string{"ok"}, Outputs: []string{"led"}})
	if s, err := b.Serial(); err != nil || s != "SIM-0042" {
		t.Fatalf("Serial = %q, %v", s, err)
	}
	in, err := b.Input("ok")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Press("ok"); err != nil {
		t.Fatal(err)
	}
	if err := b.LongPress("ok"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []board.Press{{Name: "ok"}, {Name: "ok", Long: true}} {
		if p, err := in.WaitPress(t.Context()); err != nil || p != want {
			t.Fatalf("got %+v, %v; want %+v", p, err, want)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := in.WaitPress(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("no press pending, got %v", err)
	}
	o, err := b.Output("led")
	if err != nil {
		t.Fatal(err)
	}
	_ = o.Set(true)
	if err := b.Halt(); err != nil {
		t.Fatal(err)
	}
	led := o.(*Output)
	if led.On() || !slices.Equal(led.History(), []bool{true, false}) {
		t.Fatalf("led on=%v history=%v", led.On(), led.History())
	}
	for _, err := range []error{
		func() error { _, err := b.Input("cancel"); return err }(),
		func() error { _, err := b.Output("buzzer"); return err }(),
		b.Press("nope"),
		b.LongPress("nope"),
	} {
		if !errors.Is(err, board.ErrNoPin) {
			t.Errorf("got %v, want ErrNoPin", err)
		}
	}
	if _, err := b.I2C("1"); !errors.Is(err, board.ErrNoBus) {
		t.Errorf("I2C: %v", err)
	}
	if _, err := b.SPI("0.0"); !errors.Is(err, board.ErrNoBus) {
		t.Errorf("SPI: %v", err)
	}
}
