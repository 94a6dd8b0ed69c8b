// Command screenshots writes a PNG of every screen kind at the panel sizes
// the screens are designed for, for the docs. From the module root:
//
//	go run ./display/cmd/screenshots                 # docs/img, 128x64 and 240x240
//	go run ./display/cmd/screenshots -out shots -sizes 250x122 -zoom 4
package main

import (
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"time"

	"labelstation/display"
	"labelstation/display/displaytest"
)

func main() {
	var opt options
	flag.StringVar(&opt.out, "out", "docs/img", "directory to write the PNGs to")
	flag.StringVar(&opt.sizes, "sizes", defaultSizes, "comma-separated panel sizes")
	flag.IntVar(&opt.zoom, "zoom", 1, "whole-pixel zoom of the written images")
	flag.Parse()
	if err := run(opt); err != nil {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

// defaultSizes are the sizes docs/img shows: the OLED the screens are
// designed for and a square colour panel.
const defaultSizes = "128x64,240x240"

type options struct {
	out, sizes string
	zoom       int
}

func run(opt options) error {
	if opt.zoom < 1 {
		return fmt.Errorf("-zoom %d: must be at least 1", opt.zoom)
	}
	if err := os.MkdirAll(opt.out, 0o755); err != nil {
		return err
	}
	// A fixed instant: screenshots change only when the screens do.
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range strings.Split(opt.sizes, ",") {
		var size image.Point
		if _, err := fmt.Sscanf(s, "%dx%d", &size.X, &size.Y); err != nil {
			return fmt.Errorf("-sizes %q: want WxH: %w", s, err)
		}
		for _, v := range displaytest.Views(now) {
			img, err := display.Render(v, size)
			if err != nil {
				return fmt.Errorf("%v at %s: %w", v.Kind, s, err)
			}
			name := filepath.Join(opt.out, fmt.Sprintf("%s-%s.png", strings.ToLower(v.Kind.String()), s))
			if err := write(name, zoom(img, opt.zoom)); err != nil {
				return err
			}
		}
	}
	return nil
}

func zoom(src *image.Gray, z int) *image.Gray {
	if z == 1 {
		return src
	}
	b := src.Rect
	dst := image.NewGray(image.Rect(0, 0, b.Dx()*z, b.Dy()*z))
	for y := range dst.Rect.Dy() {
		for x := range dst.Rect.Dx() {
			dst.Pix[y*dst.Stride+x] = src.Pix[(y/z)*src.Stride+x/z]
		}
	}
	return dst
}

func write(name string, img image.Image) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}
