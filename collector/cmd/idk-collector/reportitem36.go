package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"idk/collector/report"
	"idk/internal/atomicfile"
)

// reportItem36Command is the CLI of the item 36 report (the month's
// breaches of the item 35 limits with their causes, which the head of
// post signs) and of the first deputy's decisions on them, over the
// running collector's HTTP API (args are those after `report item36`):
//
//	idk-collector report item36 -month 2026-11 [-kod-to K] -o FILE.xlsx|FILE.html
//	idk-collector report item36 -month 2026-11 [-kod-to K]          (the rows as JSON, with case IDs)
//	idk-collector report item36 decide -case ID -objective=true|false -by NAME [-note TEXT]
func reportItem36Command(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "decide" {
		return reportItem36Decide(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("report item36", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := reportAPIFlags(fs)
	month := fs.String("month", "", "the reporting month: 2026-11 or 11.2026 (required)")
	kodTO := fs.String("kod-to", "", "the customs body (KOD_TO); may be left out when the collector serves one")
	out := fs.String("o", "", "the file to write: .xlsx (the workbook) or .html (the page to print and sign); without it the rows are printed as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: idk-collector report item36 -month 2026-11 [-kod-to K] [-o FILE.xlsx|FILE.html]")
		fmt.Fprintln(stderr, "       idk-collector report item36 decide -case ID -objective=true|false -by NAME [-note TEXT]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "idk-collector report item36: unexpected %q\n", fs.Args())
		return 2
	}
	if *month == "" {
		fmt.Fprintln(stderr, "idk-collector report item36: -month is required")
		return 2
	}
	format := "json"
	switch ext := strings.ToLower(filepath.Ext(*out)); {
	case *out == "":
	case ext == ".xlsx" || ext == ".html":
		format = ext[1:]
	default:
		fmt.Fprintf(stderr, "idk-collector report item36: -o %s: want a .xlsx or .html file\n", *out)
		return 2
	}
	c, err := conn.client()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 2
	}
	q := url.Values{"month": {*month}, "format": {format}}
	if *kodTO != "" {
		q.Set("kod_to", *kodTO)
	}
	path := "/api/v1/reports/item36?" + q.Encode()
	if format == "json" {
		var res report.Item36Reply
		if err := c.do(http.MethodGet, path, nil, &res); err != nil {
			fmt.Fprintln(stderr, "idk-collector:", err)
			return 1
		}
		return printReportJSON(stdout, res)
	}
	data, _, err := c.get(path)
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 1
	}
	if err := atomicfile.WriteFile(*out, data, 0o644); err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d bytes\n", *out, len(data))
	return 0
}

// reportItem36Decide records the first deputy's decision on one breach.
func reportItem36Decide(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report item36 decide", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := reportAPIFlags(fs)
	caseID := fs.String("case", "", "the breach's case ID, as the report's JSON or GET /api/v1/breaches shows it (required)")
	objective := fs.String("objective", "", "true: the causes were objective; false: they were not (required)")
	by := fs.String("by", "", "who decided (required)")
	note := fs.String("note", "", "the resolution's text")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "idk-collector report item36 decide: unexpected %q\n", fs.Args())
		return 2
	}
	// -objective is a string flag, not a bool one, so that leaving it
	// out is an error rather than a silent "false".
	obj, err := strconv.ParseBool(*objective)
	switch {
	case *caseID == "":
		fmt.Fprintln(stderr, "idk-collector report item36 decide: -case is required")
		return 2
	case *objective == "" || err != nil:
		fmt.Fprintln(stderr, "idk-collector report item36 decide: -objective=true or -objective=false is required")
		return 2
	case strings.TrimSpace(*by) == "":
		fmt.Fprintln(stderr, "idk-collector report item36 decide: -by is required: who decided")
		return 2
	}
	c, err := conn.client()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 2
	}
	var res any
	req := report.DecisionRequest{CaseID: *caseID, Objective: &obj, By: *by, Note: *note}
	if err := c.do(http.MethodPost, "/api/v1/reports/item36/decision", req, &res); err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 1
	}
	return printReportJSON(stdout, res)
}
