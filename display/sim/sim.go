// Package sim is a simulated panel for development and tests: every frame
// is written as a PNG file and mirrored on a local web page, where a person
// can also tap a badge or press a button.
package sim

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"labelstation/board"
	"labelstation/display"
)

// Options configures a simulated panel.
type Options struct {
	// Dir receives frame-000001.png, frame-000002.png, ... and latest.png;
	// New removes frame files an earlier run left there. Empty keeps frames
	// in memory only.
	Dir string
	// Keep is how many frame files stay in Dir, oldest removed first, so a
	// station left running for days does not fill its disk; 0 keeps all.
	Keep int
	// Size is the panel resolution in pixels, e.g. 128×64.
	Size image.Point
	// Scale is the whole-pixel zoom of the web page; 0 means 4.
	Scale int
	// Badges are offered on the web page as one-click taps.
	Badges []Badge
	// Buttons are the panel's push buttons; nil means "A" and "B".
	Buttons []string
	// LongPress is how long a button on the web page is held for a long press;
	// 0 means board.DefaultLongPress.
	LongPress time.Duration
}

// Badge is a demo badge for the web page.
type Badge struct {
	Name string
	UID  []byte
}

// Panel is a simulated display.
type Panel struct {
	opt Options

	mu      sync.Mutex
	seq     int           // frames shown so far
	last    *image.Gray   // newest frame
	png     []byte        // newest frame, encoded
	changed chan struct{} // closed and replaced on every frame
}

var _ display.Panel = (*Panel)(nil)

// ErrOptions is wrapped by New for invalid Options.
var ErrOptions = errors.New("sim: invalid options")

// New returns a panel showing a blank (white) frame, numbered 0.
func New(opt Options) (*Panel, error) {
	if opt.Size.X <= 0 || opt.Size.Y <= 0 || opt.Size.X > 4096 || opt.Size.Y > 4096 {
		return nil, fmt.Errorf("%w: Options.Size %dx%d must be between 1x1 and 4096x4096", ErrOptions, opt.Size.X, opt.Size.Y)
	}
	if opt.Scale == 0 {
		opt.Scale = 4
	}
	if opt.Scale < 1 || opt.Scale > 16 {
		return nil, fmt.Errorf("%w: Options.Scale %d must be between 1 and 16", ErrOptions, opt.Scale)
	}
	if opt.Keep < 0 {
		return nil, fmt.Errorf("%w: Options.Keep %d must not be negative", ErrOptions, opt.Keep)
	}
	if opt.Buttons == nil {
		opt.Buttons = []string{"A", "B"}
	}
	if opt.LongPress == 0 {
		opt.LongPress = board.DefaultLongPress
	}
	if opt.LongPress < 0 {
		return nil, fmt.Errorf("%w: Options.LongPress %v must not be negative", ErrOptions, opt.LongPress)
	}
	for i, b := range opt.Badges {
		if len(b.UID) == 0 {
			return nil, fmt.Errorf("%w: Options.Badges[%d] (%q) has no UID", ErrOptions, i, b.Name)
		}
	}
	if opt.Dir != "" {
		if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		// Numbering restarts at 1: a previous run's frames would be
		// mistaken for this one's.
		old, err := filepath.Glob(filepath.Join(opt.Dir, "frame-[0-9]*.png"))
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return nil, fmt.Errorf("sim: %w", err)
			}
		}
	}
	p := &Panel{opt: opt, changed: make(chan struct{})}
	p.last = p.blank()
	p.png = encode(p.last)
	return p, nil
}

// blank is an all-white frame: what an idle e-paper shows.
func (p *Panel) blank() *image.Gray {
	img := image.NewGray(p.Bounds())
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	return img
}

// encoder reuses its zlib state across frames (most of a frame's cost) and
// favours speed: frames are small and tap feedback is what counts.
var encoder = png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &bufferPool{}}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() *png.EncoderBuffer {
	e, _ := b.p.Get().(*png.EncoderBuffer)
	return e
}

func (b *bufferPool) Put(e *png.EncoderBuffer) { b.p.Put(e) }

func encode(img image.Image) []byte {
	var b bytes.Buffer
	// Encoding an in-memory Gray image into a bytes.Buffer cannot fail.
	_ = encoder.Encode(&b, img)
	return b.Bytes()
}

// Bounds implements display.Panel.
func (p *Panel) Bounds() image.Rectangle { return image.Rectangle{Max: p.opt.Size} }

func (p *Panel) String() string { return fmt.Sprintf("sim(%dx%d)", p.opt.Size.X, p.opt.Size.Y) }

// Show stores a copy of img as the next frame, writes it to Dir and wakes
// the web page and WaitFrame callers.
func (p *Panel) Show(img image.Image) error {
	if img.Bounds().Size() != p.opt.Size {
		return fmt.Errorf("sim: frame %dx%d does not match panel %dx%d",
			img.Bounds().Dx(), img.Bounds().Dy(), p.opt.Size.X, p.opt.Size.Y)
	}
	c := image.NewGray(p.Bounds())
	draw.Draw(c, c.Rect, img, img.Bounds().Min, draw.Src)
	return p.store(c)
}

// Halt blanks the panel, as a real one is blanked at shutdown.
func (p *Panel) Halt() error { return p.store(p.blank()) }

func (p *Panel) store(img *image.Gray) error {
	data := encode(img)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	p.last, p.png = img, data
	close(p.changed)
	p.changed = make(chan struct{})
	if p.opt.Dir == "" {
		return nil
	}
	// Under the lock so files are numbered in the order frames were shown.
	if err := os.WriteFile(p.frameFile(p.seq), data, 0o644); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if old := p.seq - p.opt.Keep; p.opt.Keep > 0 && old > 0 {
		if err := os.Remove(p.frameFile(old)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sim: %w", err)
		}
	}
	// latest.png is replaced atomically so a viewer never reads half a file.
	tmp := filepath.Join(p.opt.Dir, ".latest.png.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(p.opt.Dir, "latest.png")); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

func (p *Panel) frameFile(seq int) string {
	return filepath.Join(p.opt.Dir, fmt.Sprintf("frame-%06d.png", seq))
}

// WaitFrame waits until frame number after+1 or later was shown and
// returns the newest frame's number and image. Frame 0 is the blank frame
// New starts with, so WaitFrame(ctx, -1) returns at once.
func (p *Panel) WaitFrame(ctx context.Context, after int) (int, image.Image, error) {
	for {
		p.mu.Lock()
		seq, img, ch := p.seq, p.last, p.changed
		p.mu.Unlock()
		if seq > after {
			return seq, img, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return seq, nil, fmt.Errorf("sim: waiting for frame %d: %w", after+1, ctx.Err())
		}
	}
}

// frame returns the newest frame's number and PNG bytes.
func (p *Panel) frame() (int, []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq, p.png
}

// ParseUID reads a badge UID typed by a person: hex digits, optionally with
// a 0x prefix and ':', '-' or ' ' between bytes ("04:A2:3B:91"). NFC UIDs
// are 4, 7 or 10 bytes (ISO/IEC 14443-3 §6.5.4) and 125 kHz EM4100 IDs 5,
// so 1 to 10 bytes are accepted.
func ParseUID(s string) ([]byte, error) {
	clean := make([]byte, 0, len(s))
	t := s
	if len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X") {
		t = t[2:]
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; c {
		case ':', '-', ' ':
		default:
			clean = append(clean, c)
		}
	}
	if len(clean) == 0 {
		return nil, fmt.Errorf("sim: uid is empty, want hex like 04a23b91")
	}
	uid, err := hex.DecodeString(string(clean))
	if err != nil {
		return nil, fmt.Errorf("sim: uid %q is not hex bytes: %w", s, err)
	}
	if len(uid) > 10 {
		return nil, fmt.Errorf("sim: uid %q is %d bytes, want at most 10", s, len(uid))
	}
	return uid, nil
}
