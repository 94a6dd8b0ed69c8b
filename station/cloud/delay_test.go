package cloud

import (
	"context"
	"net"
	"testing"
	"time"
)

// The reconnect delay: while the broker's port is unreachable the full backoff is waited out
// with a probe that ends it when the port answers; while the port answers although the connect
// failed (a middlebox resetting connections whose far side is gone), no probe can tell when
// that ends, so the wait is capped: the link is back within the cap of the broker's return
// however far the backoff grew.
func TestReconnectDelay(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	go func() { // accept and reset, as the middlebox does
		for {
			c, err := open.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		addr        string
		backoff     time.Duration
		probe       bool
		want        time.Duration
		wantProbing bool
	}{
		{"port answers: capped", open.Addr().String(), 20 * time.Second, true, portOpenWait, false},
		{"port answers, short backoff", open.Addr().String(), time.Second, true, time.Second, false},
		{"port unreachable: backoff with probe", closedAddr, 20 * time.Second, true, 20 * time.Second, true},
		{"no probe (token refused)", open.Addr().String(), 20 * time.Second, false, 20 * time.Second, false},
	} {
		l := &Link{opt: Options{Broker: "tcp://" + tc.addr, Probe: 500 * time.Millisecond}}
		d, probing := l.delay(ctx, tc.backoff, tc.probe)
		if d != tc.want || probing != tc.wantProbing {
			t.Errorf("%s: delay %v probing %v, want %v %v", tc.name, d, probing, tc.want, tc.wantProbing)
		}
	}
}
