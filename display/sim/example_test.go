package sim_test

import (
	"context"
	"fmt"
	"image"
	"net/http"
	"time"

	"labelstation/display"
	"labelstation/display/sim"
)

// The station renders its View and shows it; the web page at Handler
// mirrors it and turns taps into the station's badge events.
func Example() {
	p, err := sim.New(sim.Options{Size: image.Pt(128, 64)})
	if err != nil {
		panic(err)
	}
	taps := make(chan []byte, 1)
	var _ http.Handler = p.Handler(func(uid []byte) { taps <- uid }, nil)

	img, err := display.Render(display.View{Kind: display.Idle, Station: "LS-0042", Online: true}, p.Bounds().Size())
	if err != nil {
		panic(err)
	}
	if err := p.Show(img); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, _, err := p.WaitFrame(ctx, 0)
	fmt.Println(p, "frame", n, err)
	// Output: sim(128x64) frame 1 <nil>
}
