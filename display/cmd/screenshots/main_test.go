package main

import (
	"flag"
	"image"
	"image/png"
	"labelstation/display"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/img from the current screens")

// TestScreenshotsCurrent keeps docs/img in step with the screens: it fails
// when a screen changed and the docs still show the old one. Refresh with
// go test ./display/cmd/screenshots -update
func TestScreenshotsCurrent(t *testing.T) {
	docs := filepath.Join("..", "..", "..", "docs", "img")
	if *update {
		if err := run(options{out: docs, sizes: defaultSizes, zoom: 1}); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	if err := run(options{out: tmp, sizes: defaultSizes, zoom: 1}); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(tmp, "*.png"))
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * len(display.Kinds()); len(names) != want {
		t.Errorf("%d screenshots, want %d kinds at 2 sizes", len(names), len(display.Kinds()))
	}
	for _, n := range names {
		want := decode(t, n)
		got := decode(t, filepath.Join(docs, filepath.Base(n)))
		if got == nil || want.Bounds() != got.Bounds() || !slices.Equal(want.Pix, got.Pix) {
			t.Errorf("docs/img/%s is stale; run go test ./display/cmd/screenshots -update", filepath.Base(n))
		}
	}
}

func decode(t *testing.T, name string) *image.Gray {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Log(err)
		return nil
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	g, _ := img.(*image.Gray)
	return g
}

func TestZoom(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 2, 1))
	src.Pix[1] = 0xff
	got := zoom(src, 3)
	if got.Rect.Dx() != 6 || got.Rect.Dy() != 3 {
		t.Fatalf("zoomed size %v", got.Rect)
	}
	for y := range 3 {
		if !slices.Equal(got.Pix[y*got.Stride:y*got.Stride+6], []uint8{0, 0, 0, 0xff, 0xff, 0xff}) {
			t.Errorf("row %d = %v", y, got.Pix[y*got.Stride:y*got.Stride+6])
		}
	}
}
