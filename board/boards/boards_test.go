package boards

import (
	"errors"
	"testing"

	"labelstation/board"
)

func TestOpenSim(t *testing.T) {
	b, err := Open(board.Config{Kind: "sim", Serial: "SIM-7", Inputs: map[string]board.PinConfig{"ok": {}}})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := b.Serial(); s != "SIM-7" {
		t.Fatalf("serial %q", s)
	}
	if _, err := b.Input("ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Output("led"); !errors.Is(err, board.ErrNoPin) {
		t.Fatalf("got %v", err)
	}
}

func TestOpenUnknown(t *testing.T) {
	for _, kind := range []string{"", "jetson"} {
		if _, err := Open(board.Config{Kind: kind}); !errors.Is(err, board.ErrUnknown) {
			t.Errorf("kind %q: got %v", kind, err)
		}
	}
}
