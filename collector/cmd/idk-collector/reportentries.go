package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"idk/collector/config"
	"idk/collector/report"
	"idk/internal/secretfile"
)

// reportEntryCommand enters officers' rows of tables 2, 5 and 6 through
// the running collector's API (args are those after `report entry`):
//
//	idk-collector report entry -table 2 -f rows.json -by NAME
//	idk-collector report entry -correct T2-000001 -reason TEXT -by NAME [-f fields.json] [FIELD=VALUE ...]
//	idk-collector report entry -history T2-000001
//
// rows.json is a JSON array of objects, one per row, field name to value,
// every value a string: [{"NUM_SNIM": "201701040006080003", "REZ": "1",
// ...}]. With -correct, -f holds one object of the fields to change (""
// clears one); FIELD=VALUE arguments add to it. "-f -" reads standard
// input. The API is the configuration's (listen.http, api.token_file)
// unless -api and -token-file say otherwise.
func reportEntryCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report entry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := reportAPIFlags(fs)
	table := fs.Int("table", 0, "the table of the new rows: 2, 5 or 6")
	file := fs.String("f", "", "the JSON file of rows (an array of objects), or with -correct of fields (an object); - for standard input")
	by := fs.String("by", "", "who enters them (required)")
	correct := fs.String("correct", "", "the ID of an entry to correct (T2-000001): stores a new version, the old one is kept")
	reason := fs.String("reason", "", "with -correct: why (required)")
	history := fs.String("history", "", "the ID of an entry whose every version to show")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: idk-collector report entry -table 2|5|6 -f rows.json -by NAME")
		fmt.Fprintln(stderr, "       idk-collector report entry -correct ID -reason TEXT -by NAME [-f fields.json] [FIELD=VALUE ...]")
		fmt.Fprintln(stderr, "       idk-collector report entry -history ID")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "idk-collector report entry:", msg)
		return 2
	}
	var method, path string
	var body any
	switch {
	case *history != "":
		if *correct != "" || *table != 0 || *file != "" || fs.NArg() > 0 {
			return usage("-history takes no other flags")
		}
		method, path = http.MethodGet, "/api/v1/reports/entries/"+url.PathEscape(*history)
	case *correct != "":
		if *table != 0 {
			return usage("-correct takes no -table: the entry's ID names it")
		}
		if *by == "" || *reason == "" {
			return usage("-correct needs -by and -reason")
		}
		fields := map[string]string{}
		if *file != "" {
			if err := readEntryJSON(*file, &fields); err != nil {
				fmt.Fprintln(stderr, "idk-collector:", err)
				return 2
			}
		}
		for _, a := range fs.Args() {
			name, value, ok := strings.Cut(a, "=")
			if !ok || name == "" {
				return usage(fmt.Sprintf("argument %q: want FIELD=VALUE", a))
			}
			fields[name] = value
		}
		if len(fields) == 0 {
			return usage("-correct needs the fields to change: -f fields.json or FIELD=VALUE arguments")
		}
		method, path = http.MethodPut, "/api/v1/reports/entries/"+url.PathEscape(*correct)
		body = report.CorrectionRequest{By: *by, Reason: *reason, Fields: fields}
	default:
		if *table == 0 || *file == "" || *by == "" {
			fs.Usage()
			return 2
		}
		if fs.NArg() > 0 || *reason != "" {
			return usage("FIELD=VALUE arguments and -reason go with -correct")
		}
		var rows []map[string]string
		if err := readEntryJSON(*file, &rows); err != nil {
			fmt.Fprintln(stderr, "idk-collector:", err)
			return 2
		}
		method, path = http.MethodPost, "/api/v1/reports/entries"
		body = report.EntriesRequest{Table: *table, By: *by, Rows: rows}
	}
	c, err := conn.client()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 2
	}
	var out any
	if err := c.do(method, path, body, &out); err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 1
	}
	return printReportJSON(stdout, out)
}

// reportCountsCommand enters the post's object counts of table 3 for one
// ИДК and day (args are those after `report counts`):
//
//	idk-collector report counts -num-idk 850591 -date 27.11.2026 -by NAME OKO_GRU_IM=12 KOVR_GRU_IM=10 ...
//	idk-collector report counts -num-idk 850591 -date 27.11.2026
//
// Each call stores a new version that replaces the day's counts whole: a
// field not given is 0. Without FIELD=N it shows the counts in force.
func reportCountsCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report counts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := reportAPIFlags(fs)
	numIDK := fs.String("num-idk", "", "NUM_IDK of the ИДК (required)")
	date := fs.String("date", "", "the day: 27.11.2026 or 2026-11-27 (required)")
	by := fs.String("by", "", "who enters them (required to enter)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: idk-collector report counts -num-idk N -date DD.MM.YYYY -by NAME OKO_GRU_IM=12 KOVR_GRU_IM=10 ...")
		fmt.Fprintln(stderr, "       idk-collector report counts -num-idk N -date DD.MM.YYYY      (show the counts in force)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *numIDK == "" || *date == "" {
		fs.Usage()
		return 2
	}
	day := *date
	// The API takes the report's DD.MM.YYYY; the other report commands
	// also take YYYY-MM-DD.
	if t, err := time.Parse("2006-01-02", day); err == nil {
		day = t.Format("02.01.2006")
	}
	counts := report.Counts{}
	for _, a := range fs.Args() {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			fmt.Fprintf(stderr, "idk-collector report counts: argument %q: want FIELD=N, e.g. OKO_GRU_IM=12\n", a)
			return 2
		}
		n, err := strconv.Atoi(value)
		if err != nil {
			fmt.Fprintf(stderr, "idk-collector report counts: argument %q: %q is not an integer\n", a, value)
			return 2
		}
		if _, dup := counts[name]; dup {
			fmt.Fprintf(stderr, "idk-collector report counts: %s given twice\n", name)
			return 2
		}
		counts[name] = n
	}
	if len(counts) > 0 && *by == "" {
		fmt.Fprintln(stderr, "idk-collector report counts: -by is required: who enters the counts")
		return 2
	}
	c, err := conn.client()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 2
	}
	var out any
	if len(counts) == 0 {
		q := url.Values{"num_idk": {*numIDK}, "date": {day}}
		err = c.do(http.MethodGet, "/api/v1/reports/counts?"+q.Encode(), nil, &out)
	} else {
		err = c.do(http.MethodPut, "/api/v1/reports/counts", report.CountsRequest{NumIDK: *numIDK, Date: day, By: *by, Counts: counts}, &out)
	}
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 1
	}
	return printReportJSON(stdout, out)
}

// reportAPI is where the entry commands send their requests.
type reportAPI struct {
	config, api, tokenFile *string
}

func reportAPIFlags(fs *flag.FlagSet) reportAPI {
	return reportAPI{
		config:    fs.String("config", "collector.toml", "the collector's configuration file: the API's address (listen.http)"),
		api:       fs.String("api", "", "the API's base URL, e.g. http://127.0.0.1:8080 (default: from -config)"),
		tokenFile: fs.String("token-file", "", "the file holding your API token, from 'idk-collector user token' (default: $"+tokenEnv+", else the old shared api.token_file of -config)"),
	}
}

// tokenEnv names the environment variable that may name the token file,
// so that a person sets it once in their profile.
const tokenEnv = "IDK_API_TOKEN_FILE"

// client is the API client: from -api and -token-file where given, else
// from the configuration, which is read only when one of them is missing.
func (a reportAPI) client() (apiClient, error) {
	base, tokenFile := strings.TrimRight(*a.api, "/"), *a.tokenFile
	if tokenFile == "" {
		tokenFile = os.Getenv(tokenEnv)
	}
	if base == "" || tokenFile == "" {
		cfg, err := config.Load(*a.config)
		if err != nil {
			return apiClient{}, err
		}
		if base == "" {
			if cfg.Listen.HTTP == "" {
				return apiClient{}, fmt.Errorf("%s: listen.http is not set: the collector serves no API; give -api", *a.config)
			}
			base = "http://" + cfg.Listen.HTTP
		}
		if tokenFile == "" {
			tokenFile = cfg.API.TokenFile
		}
	}
	if tokenFile == "" {
		return apiClient{}, fmt.Errorf("no API token: give -token-file (or set %s) with your own token, issued by 'idk-collector user token -login YOU'", tokenEnv)
	}
	t, err := secretfile.Read(tokenFile)
	if err != nil {
		return apiClient{}, fmt.Errorf("api token: %w", err)
	}
	return apiClient{base: base, token: t}, nil
}

// readEntryJSON reads the JSON file name ("-": standard input) into v,
// refusing unknown shapes and values that are not strings by name.
func readEntryJSON(name string, v any) error {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, 64<<20))
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Value == "number" {
			return fmt.Errorf("%s: %w: write every value as a string (\"REZ\": \"1\"), so that leading zeros (\"056\") are kept", name, err)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: more after the JSON value", name)
	}
	return nil
}

func printReportJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}
