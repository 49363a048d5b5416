package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"idk/collector/reanalysis"
)

// reanalysisCommand is the re-analysis unit's side of the collector's API
// (args are those after `reanalysis`):
//
//	idk-collector reanalysis scans -kod-to 10216100 -from 01.11.2026 -to 30.11.2026 [-num-idk N] [-rez 1|2] [-num-pr NNNNN] [-limit N]
//	idk-collector reanalysis leads (the same flags)
//	idk-collector reanalysis record -f session.json
//	idk-collector reanalysis show RA-000001
//	idk-collector reanalysis list -from 01.11.2026 -to 30.11.2026 [-kod-to 10200000]
//
// session.json is the session as the API takes it (reanalysis.Request):
// {"fio", "lnp", "kod_to" (the re-analysing body), "date", "scans":
// [{"num_idk", "num_snim"}], "missing", "substituted", "violations":
// [{"num_snim", "opisanie", "rez", "date_sys_r"}], "kol_vo_ppr", ...}.
// "-f -" reads standard input. Days are DD.MM.YYYY or YYYY-MM-DD. The API
// is the configuration's (listen.http, api.token_file) unless -api and
// -token-file say otherwise.
func reanalysisCommand(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintln(stderr, "usage: idk-collector reanalysis scans|leads -kod-to KOD_TO -from DAY -to DAY [-num-idk N] [-rez 1|2] [-num-pr N] [-limit N]")
		fmt.Fprintln(stderr, "       idk-collector reanalysis record -f session.json")
		fmt.Fprintln(stderr, "       idk-collector reanalysis show ID")
		fmt.Fprintln(stderr, "       idk-collector reanalysis list -from DAY -to DAY [-kod-to KOD_TO]")
	}
	if len(args) == 0 {
		usage()
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("reanalysis "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := reportAPIFlags(fs)
	fail := func(msg string) int {
		fmt.Fprintf(stderr, "idk-collector reanalysis %s: %s\n", verb, msg)
		return 2
	}
	var method, path string
	var body any
	switch verb {
	case "scans", "leads":
		kodTO := fs.String("kod-to", "", "the customs body the scans were made at (required)")
		from := fs.String("from", "", "the first day (required)")
		to := fs.String("to", "", "the last day, included (required)")
		numIDK := fs.String("num-idk", "", "only this ИДК's scans")
		rez := fs.String("rez", "", "only scans with this decision: 1 без подозрений, 2 под подозрением")
		numPR := fs.String("num-pr", "", "only scans of this risk profile (NUM_PR)")
		limit := fs.Int("limit", 0, "at most this many scans")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *kodTO == "" || *from == "" || *to == "" || fs.NArg() > 0 {
			return fail("-kod-to, -from and -to are required, and nothing else")
		}
		q := url.Values{"kod_to": {*kodTO}, "from": {apiDay(*from)}, "to": {apiDay(*to)}}
		for name, v := range map[string]string{"num_idk": *numIDK, "rez": *rez, "num_pr": *numPR} {
			if v != "" {
				q.Set(name, v)
			}
		}
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		method, path = http.MethodGet, "/api/v1/reanalysis/"+verb+"?"+q.Encode()
	case "record":
		file := fs.String("f", "", "the session's JSON file; - for standard input (required)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *file == "" || fs.NArg() > 0 {
			return fail("-f is required, and nothing else")
		}
		var req reanalysis.Request
		if err := readEntryJSON(*file, &req); err != nil {
			fmt.Fprintln(stderr, "idk-collector:", err)
			return 2
		}
		method, path, body = http.MethodPost, "/api/v1/reanalysis/sessions", req
	case "show":
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() != 1 {
			return fail("want one session ID, e.g. RA-000001")
		}
		method, path = http.MethodGet, "/api/v1/reanalysis/sessions/"+url.PathEscape(fs.Arg(0))
	case "list":
		kodTO := fs.String("kod-to", "", "only the sessions of this re-analysing body")
		from := fs.String("from", "", "the first day (required)")
		to := fs.String("to", "", "the last day, included (required)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *from == "" || *to == "" || fs.NArg() > 0 {
			return fail("-from and -to are required, and nothing else")
		}
		q := url.Values{"from": {apiDay(*from)}, "to": {apiDay(*to)}}
		if *kodTO != "" {
			q.Set("kod_to", *kodTO)
		}
		method, path = http.MethodGet, "/api/v1/reanalysis/sessions?"+q.Encode()
	default:
		fmt.Fprintf(stderr, "idk-collector reanalysis: unknown command %q\n", verb)
		usage()
		return 2
	}
	c, err := conn.client()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 2
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			fmt.Fprintln(stderr, "idk-collector:", err)
			return 2
		}
		rd = bytes.NewReader(b)
	}
	// Recording reads every RAW file of the session to check it against
	// the index before laying it out: minutes for a day's scans (the API
	// answers within its 5-minute write timeout), not the
	// seconds the other commands are given.
	b, _, err := c.send(method, path, rd, 5*time.Minute, 1<<26)
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 1
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		fmt.Fprintln(stderr, "idk-collector: undecodable answer:", err)
		return 1
	}
	return printReportJSON(stdout, out)
}

// apiDay writes a day as the API takes it, DD.MM.YYYY; the commands also
// take YYYY-MM-DD, as the report commands do. Anything else is passed on
// for the API to refuse by name.
func apiDay(s string) string {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Format("02.01.2006")
	}
	return s
}
