package chaos

import (
	"fmt"
	"strings"
)

// Table renders the result table in Markdown.
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| fault | iterations | labels expected | exactly once | duplicated | lost | cloud ≠ paper | not recovered |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range append(append([]Row(nil), r.Rows...), r.Total()) {
		name := x.Fault
		if x.Fault == "total" {
			name = "**total**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d |\n", name, x.Iterations, x.Expected, x.Once, x.Duplicated, x.Lost, x.Disagree, x.Unrecovered)
	}
	for _, x := range r.Rows {
		if x.Note != "" {
			fmt.Fprintf(&b, "\n%s: %s\n", x.Fault, x.Note)
		}
	}
	return b.String()
}
