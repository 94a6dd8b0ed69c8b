package station

import (
	"context"
	"fmt"

	"labelstation/label"
)

// pairingLayout is the enrollment label: the pairing code and URL with instructions, for a
// station whose screen an admin cannot reach; the serial lets an admin tell stations apart.
// 4 × 2 in, the common stock of desktop label printers.
const pairingLayout = `{"version":1,"id":"pairing","name":"Station pairing","width_mm":101.6,"height_mm":50.8,
 "elements":[
  {"type":"barcode","symbology":"qr","x":3,"y":3,"data":"{qr}","module":0.75},
  {"type":"text","x":46,"y":3,"text":"Pair this label station","font_pt":9,"bold":true,"max_width":53,"fit":"shrink"},
  {"type":"text","x":46,"y":9,"text":"{code}","font_pt":16,"bold":true,"max_width":53,"fit":"shrink"},
  {"type":"text","x":46,"y":19,"text":"1. Scan the code, or open","font_pt":7,"max_width":53},
  {"type":"text","x":49,"y":23,"text":"{url}","font_pt":7,"max_width":50,"fit":"shrink"},
  {"type":"text","x":46,"y":28,"text":"2. Sign in and check the code","font_pt":7,"max_width":53},
  {"type":"text","x":46,"y":33,"text":"3. Approve the station","font_pt":7,"max_width":53},
  {"type":"text","x":46,"y":43,"text":"Serial {serial}","font_pt":6,"max_width":53,"fit":"shrink"}
 ]}`

// pairingCode prints the pairing label (when printer.pairing_label is set) for the first code
// of an enrollment attempt someone asked for: the boot, or a button press on the denied
// screen. Codes that replace an expired one are shown, not printed: an unattended station
// would otherwise print a label every time a code expires. A button press on the pairing
// screen prints the current code again (ButtonPressed → DoPrintPairing).
func (s *Station) pairingCode(ctx context.Context, c PairingCode) {
	if !s.config().Printer.PairingLabel || !s.wantLabel.Swap(false) {
		return
	}
	s.do(ctx, DoPrintPairing{Code: c})
}

// printPairing prints the pairing label for c on the station's printer.
func (s *Station) printPairing(ctx context.Context, c PairingCode) error {
	lay, err := label.ParseLayout([]byte(pairingLayout))
	if err != nil {
		return fmt.Errorf("station: pairing layout: %w", err)
	}
	qr := c.URIComplete
	if qr == "" {
		qr = c.URI
	}
	cfg := s.config().Printer
	data, err := label.Render(lay, label.Record{"qr": qr, "code": c.UserCode, "url": c.URI, "serial": s.opt.Serial},
		label.Target{Lang: label.Lang(cfg.Lang), DPI: cfg.DPI, Raster: cfg.Raster})
	if err != nil {
		return fmt.Errorf("station: pairing label: %w", err)
	}
	s.printMu.Lock()
	defer s.printMu.Unlock()
	// A status query first: a connection the printer dropped is found dead and replaced here,
	// where a bare write would vanish into the dead socket's buffer.
	_, _ = s.opt.Printer.Status(ctx)
	if err := s.opt.Printer.Send(ctx, data); err != nil {
		return fmt.Errorf("station: pairing label: %w", err)
	}
	s.log.Info("station: pairing label printed", "user_code", c.UserCode)
	return nil
}
