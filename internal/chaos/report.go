package chaos

import (
	"fmt"
	"strings"
)

// Table renders the result table in Markdown.
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| fault | printer | iterations | labels expected | exactly once | duplicated | lost | cloud ≠ paper | not recovered | reconciled by counter | reprinted (station said) | most dup. in one job | extra taps | longest recovery (s) | s / iteration |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range append(append([]Row(nil), r.Rows...), r.Total()) {
		name, printer := x.Fault, x.Printer
		if x.Fault == "total" {
			name, printer = "**total**", ""
		}
		per := 0.0
		if x.Iterations > 0 {
			per = x.Seconds / float64(x.Iterations)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %.1f | %.1f |\n", name, printer, x.Iterations, x.Expected,
			x.Once, x.Duplicated, x.Lost, x.Disagree, x.Unrecovered, x.Reconciled, x.Reprinted, x.MaxDupPerIteration, x.Retaps, x.MaxRecovery, per)
	}
	for _, x := range r.Rows {
		if x.Note != "" {
			fmt.Fprintf(&b, "\n%s: %s\n", x.Fault, x.Note)
		}
	}
	return b.String()
}
