package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"labelstation/label"
)

// renderCmd implements "stationctl render LAYOUT DATA --out DIR": it renders
// every record of DATA with LAYOUT, as the station would, and writes one file
// per record (for a person to look at) plus, for printer languages, the
// whole job as the printer would receive it (every label times its copies).
func renderCmd(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	out := fs.String("out", "", "output directory (created if missing)")
	langFlag := fs.String("lang", "png", "output: zpl, tspl, escpos or png")
	dpi := fs.Int("dpi", label.DefaultDPI, "printer resolution: 203, 300 or 600")
	raster := fs.Bool("raster", false, "zpl/tspl: send a 1-bit image instead of native commands")
	formatFlag := fs.String("format", "", "data format (csv, json, xml, xlsx); default from the file extension")
	sheet := fs.String("sheet", "", "xlsx: sheet name (default: the first sheet)")
	fontDir := fs.String("fonts", "", "directory of .ttf/.otf/.ttc fonts for characters the built-in fonts lack")
	charset := fs.String("charset", "", "charset of csv/json/xml data, e.g. windows-1252 or iso-8859-15 (default UTF-8, or XML's declaration)")
	// Flags may follow the positional arguments, as in the usage line.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%w: render: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != 2 || *out == "" {
		return fmt.Errorf("%w: render needs LAYOUT DATA and --out DIR", errUsage)
	}
	lang, err := label.ParseLang(*langFlag)
	if err != nil {
		return fmt.Errorf("%w: render: %v", errUsage, err)
	}
	format := *formatFlag
	if format == "" {
		format = strings.TrimPrefix(filepath.Ext(pos[1]), ".")
	}
	f, cs, err := label.ParseDataFormat(format)
	if err != nil {
		return fmt.Errorf("render: %s: %w (use --format)", pos[1], err)
	}
	if *charset != "" {
		cs = *charset
	}
	raw, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	lay, err := label.ParseLayout(raw)
	if err != nil {
		return fmt.Errorf("render: %s: %w", pos[0], err)
	}
	data, err := os.Open(pos[1])
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	defer data.Close()
	rr, err := label.NewRecordReader(f, data, label.ReadOptions{Sheet: *sheet, Charset: cs})
	if err != nil {
		return fmt.Errorf("render: %s: %w", pos[1], err)
	}
	if c, ok := rr.(io.Closer); ok {
		defer c.Close()
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	ext := map[label.Lang]string{label.LangZPL: "zpl", label.LangTSPL: "tspl", label.LangESCPOS: "escpos", label.LangPNG: "png"}[lang]
	fonts, err := label.LoadFontDir(*fontDir)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	target := label.Target{Lang: lang, DPI: *dpi, Raster: *raster, Fonts: fonts}
	// The whole job streams to disk one label at a time, as the station prints it, so memory
	// does not grow with the job; it is renamed into place only once complete.
	var job *bufio.Writer
	jobName := filepath.Join(*out, fmt.Sprintf("%s.job.%s", lay.ID, ext))
	if lang != label.LangPNG {
		jf, err := os.Create(jobName + ".part")
		if err != nil {
			return fmt.Errorf("render: %w", err)
		}
		defer func() {
			jf.Close()
			os.Remove(jf.Name()) // gone after the rename; a failed job leaves nothing behind
		}()
		job = bufio.NewWriterSize(jf, 256<<10)
	}
	var buf []byte
	records, labels := 0, 0
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("render: %s: %w", pos[1], err)
		}
		records++
		copies, err := lay.Copies(rec)
		if err != nil {
			return fmt.Errorf("render: record %d: %w", records, err)
		}
		buf, err = label.AppendRender(buf[:0], lay, rec, target)
		if err != nil {
			return fmt.Errorf("render: record %d: %w", records, err)
		}
		name := filepath.Join(*out, fmt.Sprintf("%s-%04d.%s", lay.ID, records, ext))
		if err := os.WriteFile(name, buf, 0o644); err != nil {
			return fmt.Errorf("render: %w", err)
		}
		for range copies {
			if job != nil {
				if _, err := job.Write(buf); err != nil {
					return fmt.Errorf("render: %w", err)
				}
			}
			labels++
		}
	}
	if job != nil {
		if err := job.Flush(); err != nil {
			return fmt.Errorf("render: %w", err)
		}
		if err := os.Rename(jobName+".part", jobName); err != nil {
			return fmt.Errorf("render: %w", err)
		}
	}
	fmt.Printf("rendered %d records (%d labels with copies) of layout %q as %s at %d dpi into %s\n", records, labels, lay.ID, lang, *dpi, *out)
	return nil
}
