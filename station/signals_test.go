package station

import (
	"reflect"
	"testing"
	"time"

	boardsim "labelstation/board/sim"
)

func TestBoardSignals(t *testing.T) {
	b := boardsim.New(boardsim.Options{Outputs: []string{"led", "buzzer"}})
	led, _ := b.Output("led")
	buzzer, _ := b.Output("buzzer")
	now := func(time.Duration) <-chan time.Time { c := make(chan time.Time, 1); c <- time.Time{}; return c }
	s := &BoardSignals{LED: led, Buzzer: buzzer, After: now}

	s.Signal(Idle, true)
	s.Signal(Lookup, true)
	s.Signal(UnknownBadge, false)
	if got := led.(*boardsim.Output).History(); !reflect.DeepEqual(got, []bool{true, true, false}) {
		t.Errorf("LED history %v", got)
	}
	// One beep for the tap; three for the failure (on, off, on, off, on, then off).
	want := []bool{true, false, true, false, true, false, true, false}
	if got := buzzer.(*boardsim.Output).History(); !reflect.DeepEqual(got, want) {
		t.Errorf("buzzer history %v, want %v", got, want)
	}
}
