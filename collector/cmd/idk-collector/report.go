package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"idk/internal/atomicfile"
)

// reportCommand is the CLI of the daily report, for officers and scripts.
// It talks to the running collector's HTTP API:
//
//	idk-collector report daily -date 2026-11-27 [-kod-to 10216100] -o FILE.xlsx [-version N] [-fresh]
//	idk-collector report versions -date 2026-11-27 [-kod-to K]
//	idk-collector report incomplete -date 2026-11-27 [-kod-to K]
//	idk-collector report publish -date 2026-11-27 [-kod-to K] -by NAME [-reason TEXT]
//	idk-collector report entry -table 2 -f rows.json -by NAME      (tables 2, 5, 6)
//	idk-collector report counts -num-idk N -date D -by NAME OKO_GRU_IM=12 ...
//	idk-collector report monthly -month 2026-11 -o FILE.xlsx              (item 37, the region)
//	idk-collector report item36 -month 2026-11 [-kod-to K] -o FILE.xlsx|.html   (item 36, per post)
//	idk-collector report item36 decide -case ID -objective=true|false -by NAME
func reportCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: idk-collector report <daily|monthly|item36|versions|incomplete|publish|entry|counts> [flags]")
		return 2
	}
	switch args[0] {
	case "entry":
		return reportEntryCommand(args[1:], stdout, stderr)
	case "counts":
		return reportCountsCommand(args[1:], stdout, stderr)
	case "monthly":
		return reportMonthlyCommand(args[1:], stdout, stderr)
	case "item36":
		return reportItem36Command(args[1:], stdout, stderr)
	case "daily", "versions", "incomplete", "publish":
	default:
		fmt.Fprintf(stderr, "idk-collector report: unknown command %q: want daily, monthly, item36, versions, incomplete, publish, entry or counts\n", args[0])
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("report "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := reportAPIFlags(fs)
	date := fs.String("date", "", "the report's day: 2026-11-27 or 27.11.2026 (required)")
	kodTO := fs.String("kod-to", "", "the customs body (KOD_TO); may be left out when the collector serves one")
	out := fs.String("o", "", "with daily: the .xlsx file to write (required)")
	version := fs.Int("version", 0, "with daily: a published version (default: the latest)")
	fresh := fs.Bool("fresh", false, "with daily: build it now from the current data instead of the published file")
	by := fs.String("by", "", "with publish: who publishes (required)")
	reason := fs.String("reason", "", "with publish: why (a correction)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *date == "" {
		fmt.Fprintln(stderr, "idk-collector report: -date is required")
		return 2
	}
	c, err := conn.client()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 2
	}
	q := url.Values{"date": {*date}}
	if *kodTO != "" {
		q.Set("kod_to", *kodTO)
	}
	var res any
	switch verb {
	case "daily":
		if *out == "" {
			fmt.Fprintln(stderr, "idk-collector report daily: -o FILE.xlsx is required")
			return 2
		}
		if *version > 0 {
			q.Set("version", fmt.Sprint(*version))
		}
		if *fresh {
			q.Set("fresh", "1")
		}
		if err := c.download("/api/v1/reports/daily?"+q.Encode(), *out, stdout); err != nil {
			fmt.Fprintln(stderr, "idk-collector:", err)
			return 1
		}
		return 0
	case "versions":
		err = c.do(http.MethodGet, "/api/v1/reports/daily/versions?"+q.Encode(), nil, &res)
	case "incomplete":
		err = c.do(http.MethodGet, "/api/v1/reports/daily/incomplete?"+q.Encode(), nil, &res)
	case "publish":
		q.Set("by", *by)
		if *reason != "" {
			q.Set("reason", *reason)
		}
		err = c.do(http.MethodPost, "/api/v1/reports/daily/publish?"+q.Encode(), nil, &res)
	}
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 1
	}
	return printReportJSON(stdout, res)
}

// download writes the workbook at path to the file out and says which
// version it is.
func (c apiClient) download(path, out string, stdout io.Writer) error {
	data, hdr, err := c.get(path)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: version %s, %d bytes, %s table 1 rows incomplete\n", out, hdr.Get("X-Report-Version"), len(data), hdr.Get("X-Report-Incomplete"))
	return nil
}

// get fetches path's body as it is (a workbook), up to 1 GiB. A month of
// a large region takes seconds to build.
func (c apiClient) get(path string) ([]byte, http.Header, error) {
	return c.send(http.MethodGet, path, nil, 5*time.Minute, 1<<30)
}
