package console

import "strings"

// diffLine is one line of a line diff: Op is ' ' (in both), '-' (only in
// the old text) or '+' (only in the new one).
type diffLine struct {
	Op   string
	Text string
	Old  int // line number in the old text, 0 for an added line
	New  int // line number in the new text, 0 for a removed line
}

// maxDiffCells bounds the LCS table (old lines × new lines). Forms are a
// few hundred lines; a pathological pair is shown whole as removed and
// added rather than eat the collector's memory.
const maxDiffCells = 4 << 20

// lineDiff is the line diff of a and b by the longest common subsequence:
// the classic dynamic programme, enough for forms of a few hundred lines.
func lineDiff(a, b string) []diffLine {
	x, y := splitLines(a), splitLines(b)
	n, m := len(x), len(y)
	if n*m > maxDiffCells {
		out := make([]diffLine, 0, n+m)
		for i, l := range x {
			out = append(out, diffLine{Op: "-", Text: l, Old: i + 1})
		}
		for j, l := range y {
			out = append(out, diffLine{Op: "+", Text: l, New: j + 1})
		}
		return out
	}
	// lcs[i][j] is the LCS length of x[i:] and y[j:], in one flat slice.
	w := m + 1
	lcs := make([]int32, (n+1)*w)
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	var out []diffLine
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case x[i] == y[j]:
			out = append(out, diffLine{Op: " ", Text: x[i], Old: i + 1, New: j + 1})
			i, j = i+1, j+1
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			out = append(out, diffLine{Op: "-", Text: x[i], Old: i + 1})
			i++
		default:
			out = append(out, diffLine{Op: "+", Text: y[j], New: j + 1})
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, diffLine{Op: "-", Text: x[i], Old: i + 1})
	}
	for ; j < m; j++ {
		out = append(out, diffLine{Op: "+", Text: y[j], New: j + 1})
	}
	return out
}

// splitLines splits s into lines without their ends; "\r\n" counts as one.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// changed keeps the lines of d that changed, with ctx unchanged lines
// around each change; a gap is shown as one line with Op "…".
func changed(d []diffLine, ctx int) []diffLine {
	keep := make([]bool, len(d))
	for i, l := range d {
		if l.Op == " " {
			continue
		}
		for k := max(0, i-ctx); k <= min(len(d)-1, i+ctx); k++ {
			keep[k] = true
		}
	}
	var out []diffLine
	gap := false
	for i, l := range d {
		if !keep[i] {
			gap = true
			continue
		}
		if gap {
			out = append(out, diffLine{Op: "…"})
		}
		gap = false
		out = append(out, l)
	}
	if gap && len(out) > 0 {
		out = append(out, diffLine{Op: "…"})
	}
	return out
}
