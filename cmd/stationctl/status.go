package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"labelstation/internal/statusapi"
)

// statusCmd prints the running station's health report from its local socket.
func statusCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	socket := fs.String("socket", statusapi.DefaultSocket, "stationd's status socket (stationd --status-socket)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: status takes no arguments", errUsage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := statusapi.Get(ctx, *socket)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	writeStatus(out, st)
	return nil
}

func writeStatus(out io.Writer, st statusapi.Status) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	yes := func(b bool, y, n string) string {
		if b {
			return y
		}
		return n
	}
	state := st.State
	if st.Message != "" {
		state += " (" + st.Message + ")"
	}
	row("state", "%s", state)
	enr := yes(st.Station.Enrolled, "enrolled as "+st.Station.ID, "not enrolled")
	if st.Station.PairingCode != "" {
		enr += fmt.Sprintf("; pairing code %s at %s", st.Station.PairingCode, st.Station.PairingURI)
	}
	row("station", "%s (serial %s)", enr, st.Station.Serial)
	row("broker", "%s %s", st.Broker.URL, yes(st.Broker.Online, "online", "offline"))
	pr := "ok"
	switch {
	case st.Printer.Error != "":
		pr = st.Printer.Error
	case !st.Printer.OK:
		pr = strings.Join(st.Printer.Faults, ", ")
	}
	row("printer", "%s (%s): %s", st.Printer.URL, st.Printer.Lang, pr)
	jn := fmt.Sprintf("%s, %d bytes, %d pending, %d unreported", st.Journal.Path, st.Journal.Bytes, st.Journal.Pending, st.Journal.Unreported)
	if st.Journal.Error != "" {
		jn += "; " + st.Journal.Error
	}
	row("journal", "%s", jn)
	row("version", "stationd %s", st.Version)
	row("config", "%s (state %s, log level %s)", st.Config.File, st.Config.StateDir, st.Config.LogLevel)
	row("up since", "%s", st.Started.Format(time.RFC3339))
	tw.Flush()
	if len(st.LastErrors) == 0 {
		fmt.Fprintln(out, "last errors: none")
		return
	}
	fmt.Fprintln(out, "last errors:")
	for _, e := range st.LastErrors {
		var attrs []string
		for k, v := range e.Attrs {
			attrs = append(attrs, k+"="+v)
		}
		slices.Sort(attrs)
		fmt.Fprintf(out, "  %s %-5s %s %s\n", e.Time.Format(time.RFC3339), e.Level, e.Msg, strings.Join(attrs, " "))
	}
}
