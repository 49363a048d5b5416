package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// reportMonthlyCommand is the CLI of the monthly report of the region
// (item 37), over the running collector's HTTP API:
//
//	idk-collector report monthly -month 2026-11 -o FILE.xlsx [-version N] [-fresh]
//	idk-collector report monthly -month 2026-11 -summary
//	idk-collector report monthly -month 2026-11 -versions
//	idk-collector report monthly -month 2026-11 -publish -by NAME [-reason TEXT]
func reportMonthlyCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report monthly", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := reportAPIFlags(fs)
	month := fs.String("month", "", "the report's month: 2026-11 or 11.2026 (required)")
	out := fs.String("o", "", "the .xlsx file to write")
	version := fs.Int("version", 0, "with -o: a published version (default: the latest)")
	fresh := fs.Bool("fresh", false, "with -o: build it now from the current data instead of the published file")
	summary := fs.Bool("summary", false, "print the two summary sheets, built now, as JSON")
	versions := fs.Bool("versions", false, "list the month's published versions")
	publish := fs.Bool("publish", false, "publish now: a new version if the content changed")
	by := fs.String("by", "", "with -publish: who publishes (required)")
	reason := fs.String("reason", "", "with -publish: why (a correction)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "idk-collector report monthly: unexpected %q\n", fs.Args())
		return 2
	}
	if *month == "" {
		fmt.Fprintln(stderr, "idk-collector report monthly: -month is required")
		return 2
	}
	modes := 0
	for _, on := range []bool{*out != "", *summary, *versions, *publish} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		fmt.Fprintln(stderr, "idk-collector report monthly: give one of -o FILE.xlsx, -summary, -versions, -publish")
		return 2
	}
	if *publish && *by == "" {
		fmt.Fprintln(stderr, "idk-collector report monthly: -publish needs -by NAME")
		return 2
	}
	c, err := conn.client()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 2
	}
	q := url.Values{"month": {*month}}
	var res any
	switch {
	case *out != "":
		if *version > 0 {
			q.Set("version", fmt.Sprint(*version))
		}
		if *fresh {
			q.Set("fresh", "1")
		}
		if err := c.download("/api/v1/reports/monthly?"+q.Encode(), *out, stdout); err != nil {
			fmt.Fprintln(stderr, "idk-collector:", err)
			return 1
		}
		return 0
	case *summary:
		err = c.do(http.MethodGet, "/api/v1/reports/monthly/summary?"+q.Encode(), nil, &res)
	case *versions:
		err = c.do(http.MethodGet, "/api/v1/reports/monthly/versions?"+q.Encode(), nil, &res)
	case *publish:
		q.Set("by", *by)
		if *reason != "" {
			q.Set("reason", *reason)
		}
		err = c.do(http.MethodPost, "/api/v1/reports/monthly/publish?"+q.Encode(), nil, &res)
	}
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 1
	}
	return printReportJSON(stdout, res)
}
