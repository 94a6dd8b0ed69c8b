// Package display turns the station's state into pictures for its panel.
//
// The station derives a View from its state in one pure function; Render
// draws that View for any panel size, and a Panel (real driver or the
// simulator in display/sim) shows the frame. Screens are designed for a
// 128×64 1-bit OLED first and scale by whole pixels to 250×122 e-paper,
// 240×240 and 320×240 panels, so what a person sees is crisp at every size.
package display

import (
	"errors"
	"fmt"
	"image"
	"time"
)

// Kind is the screen to show; one per station state (docs/architecture.md) plus the outcomes
// a person needs to see after a tap.
type Kind int

// The screens. The zero value is Boot so an empty View is still drawable.
const (
	Boot Kind = iota
	Enrolling
	Denied
	Connecting
	Idle
	Offline
	Lookup
	UnknownBadge
	List
	NoJobs
	Printing
	Paused
	Done
	Error
	Select  // one held job (or "Print all", "Back") to choose with the buttons
	Preview // a job's first label (View.Image) before it prints
	numKinds
)

var kindNames = [...]string{
	Boot:         "Boot",
	Enrolling:    "Enrolling",
	Denied:       "Denied",
	Connecting:   "Connecting",
	Idle:         "Idle",
	Offline:      "Offline",
	Lookup:       "Lookup",
	UnknownBadge: "UnknownBadge",
	List:         "List",
	NoJobs:       "NoJobs",
	Printing:     "Printing",
	Paused:       "Paused",
	Done:         "Done",
	Error:        "Error",
	Select:       "Select",
	Preview:      "Preview",
}

func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Kinds lists every screen kind, for tests and screenshot generators.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

// View is everything a screen shows; the station derives it from its state in
// one pure function. Render never reads the wall clock: countdowns use Now.
type View struct {
	Kind    Kind
	Title   string    // optional override of the screen's headline
	Hero    string    // optional override of the screen's large line ("Tap your badge")
	Lines   []string  // free text lines (error message, fault name, instructions)
	QR      string    // payload drawn as a QR code (enrolling: verification_uri_complete)
	Code    string    // the pairing user code, drawn large
	URL     string    // short URL to type
	Expires time.Time // enrolling countdown end; zero hides the countdown
	Now     time.Time
	User    string    // who tapped (List/Printing/Done)
	Jobs    []JobLine // List screen
	Done    int       // Printing progress: labels handed to the printer
	Total   int       // Printing progress: labels in the job(s)
	Station string    // station id or name
	Online  bool      // status indicator in the headline bar
	// Image is the Preview screen's label, drawn scaled to the panel in black and white.
	Image image.Image
}

// JobLine is one held job on the List screen.
type JobLine struct {
	Title  string
	Labels int
	Note   string // optional, shown when the row has room: the time the job has left
}

// Panel is what a real or simulated display implements. Show takes any
// image; drivers threshold or invert it as their hardware needs. Halt blanks
// the panel (periph.io conn.Resource semantics).
type Panel interface {
	Bounds() image.Rectangle
	Show(img image.Image) error
	Halt() error
	String() string
}

// Errors callers may branch on.
var (
	// ErrTooSmall means the panel cannot hold the smallest screen design.
	ErrTooSmall = errors.New("display: panel too small")
	// ErrKind means the View's Kind is not one of the defined screens.
	ErrKind = errors.New("display: unknown kind")
)

// MinSize returns the smallest landscape panel the screens are designed
// for: the SSD1306's 128×64, or a 2.13" e-paper's 122×250 in portrait (a
// width of 120 px still holds 17 small characters a line).
func MinSize() image.Point { return image.Pt(120, 64) }

// MinPortrait is the smallest narrow portrait panel: an SSD1306 turned
// upright, 64×128. It gets the compact layout (see frame.narrow): eight
// characters a line, and room for a version 3 QR code at 2 px a module.
func MinPortrait() image.Point { return image.Pt(64, 128) }

// CheckSize says whether Render can draw on a panel of size, naming the
// size and the smallest usable one when it cannot; the daemon calls it at
// start so a panel that would stay blank is refused with a reason.
func CheckSize(size image.Point) error {
	m, p := MinSize(), MinPortrait()
	if (size.X < m.X || size.Y < m.Y) && (size.X < p.X || size.Y < p.Y) {
		return fmt.Errorf("%w: %dx%d, need at least %dx%d, or %dx%d upright (a 128x32 panel is too short for a headline and two lines)",
			ErrTooSmall, size.X, size.Y, m.X, m.Y, p.X, p.Y)
	}
	return nil
}
