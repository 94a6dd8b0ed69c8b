// Package fb draws on a Linux framebuffer (/dev/fbN): small SPI TFTs with
// fbtft drivers and HDMI/DSI screens. Geometry comes from the kernel
// (linux/fb.h FBIOGET_VSCREENINFO / FBIOGET_FSCREENINFO); 16-bit RGB565 and
// 32-bit XRGB8888 are supported. Rotation is done in software.
package fb

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"io"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
	"periph.io/x/conn/v3/display"
)

// Field is one colour channel's bit position (struct fb_bitfield).
type Field struct{ Offset, Length uint32 }

// Geometry is the framebuffer layout.
type Geometry struct {
	W, H    int // visible pixels
	BPP     int // 16 or 32
	Stride  int // bytes per line (fb_fix_screeninfo.line_length)
	R, G, B Field
}

func (g Geometry) validate() error {
	if g.W <= 0 || g.H <= 0 {
		return fmt.Errorf("fb: geometry %dx%d", g.W, g.H)
	}
	if g.BPP != 16 && g.BPP != 32 {
		return fmt.Errorf("fb: %d bits per pixel: want 16 or 32", g.BPP)
	}
	if g.Stride < g.W*g.BPP/8 {
		return fmt.Errorf("fb: line length %d < %d pixels × %d bytes", g.Stride, g.W, g.BPP/8)
	}
	return nil
}

// Opts configure a panel.
type Opts struct {
	// Rotate is 0, 90, 180 or 270 degrees clockwise.
	Rotate int
}

// Panel is a framebuffer panel.
type Panel struct {
	name string
	w    io.WriterAt
	c    io.Closer
	g    Geometry
	rot  int
	line []byte
	img  *image.RGBA // logical (rotated) frame
}

var _ display.Drawer = (*Panel)(nil)

// ioctls from linux/fb.h.
const (
	fbiogetVScreenInfo = 0x4600
	fbiogetFScreenInfo = 0x4602
)

// Open opens /dev/fbN and reads its geometry.
func Open(path string, o Opts) (*Panel, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("fb: %w", err)
	}
	g, err := geometry(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fb: %s: %w", path, err)
	}
	p, err := New(path, f, g, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	p.c = f
	return p, nil
}

func geometry(f *os.File) (Geometry, error) {
	var vi [160]byte // struct fb_var_screeninfo
	var fi [80]byte  // struct fb_fix_screeninfo (68 bytes on 32-bit)
	fd := f.Fd()
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, fbiogetVScreenInfo, uintptr(unsafe.Pointer(&vi[0]))); e != 0 {
		return Geometry{}, fmt.Errorf("FBIOGET_VSCREENINFO: %w", e)
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, fbiogetFScreenInfo, uintptr(unsafe.Pointer(&fi[0]))); e != 0 {
		return Geometry{}, fmt.Errorf("FBIOGET_FSCREENINFO: %w", e)
	}
	u := func(b []byte, off int) uint32 { return binary.NativeEndian.Uint32(b[off:]) }
	// fb_fix_screeninfo: id[16], unsigned long smem_start, u32 smem_len,
	// type, type_aux, visual, u16 xpanstep, ypanstep, ywrapstep, (pad),
	// u32 line_length.
	lineLen := 16 + strconv.IntSize/8 + 4*4 + 2*3 + 2
	return Geometry{
		W: int(u(vi[:], 0)), H: int(u(vi[:], 4)), BPP: int(u(vi[:], 24)),
		R:      Field{u(vi[:], 32), u(vi[:], 36)},
		G:      Field{u(vi[:], 44), u(vi[:], 48)},
		B:      Field{u(vi[:], 56), u(vi[:], 60)},
		Stride: int(u(fi[:], lineLen)),
	}, nil
}

// New draws into w (the device, or a file in tests) laid out as g.
func New(name string, w io.WriterAt, g Geometry, o Opts) (*Panel, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	lw, lh := g.W, g.H
	switch o.Rotate {
	case 0, 180:
	case 90, 270:
		lw, lh = lh, lw
	default:
		return nil, fmt.Errorf("fb: rotate %d: want 0, 90, 180 or 270", o.Rotate)
	}
	return &Panel{name: name, w: w, g: g, rot: o.Rotate, line: make([]byte, g.W*g.BPP/8), img: image.NewRGBA(image.Rect(0, 0, lw, lh))}, nil
}

func (p *Panel) String() string          { return "fb(" + p.name + ")" }
func (p *Panel) ColorModel() color.Model { return color.RGBAModel }

// Bounds is the logical size, after rotation.
func (p *Panel) Bounds() image.Rectangle { return p.img.Bounds() }

// Draw composes src into the frame and writes the physical lines r touches.
func (p *Panel) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	draw.Draw(p.img, r, src, sp, draw.Src)
	r = r.Intersect(p.img.Bounds())
	if r.Empty() {
		return nil
	}
	// Physical rows affected by the logical rectangle.
	y0, y1 := 0, p.g.H
	switch p.rot {
	case 0:
		y0, y1 = r.Min.Y, r.Max.Y
	case 180:
		y0, y1 = p.g.H-r.Max.Y, p.g.H-r.Min.Y
	case 90:
		y0, y1 = r.Min.X, r.Max.X
	case 270:
		y0, y1 = p.g.H-r.Max.X, p.g.H-r.Min.X
	}
	bpp := p.g.BPP / 8
	for y := y0; y < y1; y++ {
		for x := range p.g.W {
			c := p.img.RGBAAt(p.logical(x, y))
			v := p.pack(c)
			if bpp == 2 {
				binary.LittleEndian.PutUint16(p.line[x*2:], uint16(v))
			} else {
				binary.LittleEndian.PutUint32(p.line[x*4:], v)
			}
		}
		if _, err := p.w.WriteAt(p.line, int64(y*p.g.Stride)); err != nil {
			return fmt.Errorf("fb: %s: line %d: %w", p.name, y, err)
		}
	}
	return nil
}

// logical maps physical pixel (x, y) to the logical frame.
func (p *Panel) logical(x, y int) (int, int) {
	switch p.rot {
	case 90: // logical (lx, ly) shows at physical (W-1-ly, lx)
		return y, p.g.W - 1 - x
	case 180:
		return p.g.W - 1 - x, p.g.H - 1 - y
	case 270: // logical (lx, ly) shows at physical (ly, H-1-lx)
		return p.g.H - 1 - y, x
	}
	return x, y
}

// pack places the colour's top bits into the channel fields.
func (p *Panel) pack(c color.RGBA) uint32 {
	f := func(v uint8, fl Field) uint32 {
		return uint32(v) >> (8 - fl.Length) << fl.Offset
	}
	return f(c.R, p.g.R) | f(c.G, p.g.G) | f(c.B, p.g.B)
}

// Halt blanks the screen (all black) and closes the device.
func (p *Panel) Halt() error {
	err := p.Draw(p.Bounds(), image.Black, image.Point{})
	if p.c != nil {
		if cerr := p.c.Close(); err == nil {
			err = cerr
		}
		p.c = nil
	}
	return err
}
