package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"idk/agent/casereport"
	"idk/agent/spool"
	"idk/internal/clock"
)

// caseReply is the running agent's answer to a case report.
type caseReply struct {
	Seq   uint64    `json:"seq,omitempty"` // the event's sequence number in the spool
	Time  time.Time `json:"time,omitzero"` // when it was recorded, by the agent's clock
	Error string    `json:"error,omitempty"`
}

// caseHandler takes the post's case reports on the agent's local listener
// (127.0.0.1 by default), the same listener as `idk-agent state`. A
// report is recorded in the spool, not sent: the shipper delivers it when
// the link allows, so the command never waits on the collector.
func caseHandler(sp *spool.Spool, clk clock.Clock, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		var rep casereport.Report
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&rep); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(caseReply{Error: "request body: " + err.Error()})
			return
		}
		// The time is taken here, not from the request: it is the
		// moment the post reported the step, by the clock the collector
		// corrects.
		at := clk.Now()
		rep, seq, err := casereport.Record(sp, at, rep)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(caseReply{Error: err.Error()})
			return
		}
		log.Info("case report recorded", "kind", rep.Kind, "num_snim", rep.NumSnim, "case_id", rep.CaseID,
			"docs", rep.Docs, "by", rep.By, "seq", seq, "time", at)
		json.NewEncoder(w).Encode(caseReply{Seq: seq, Time: at})
	})
}

const caseUsage = `usage: idk-agent case KIND -by NAME [-num-snim N] [-docs D1,D2] [-case ID] [-suspected]
        [-kod-teh C -vid-pr C -kod-to-pr C -date-reg DD.MM.YYYY -num-pr N] [-note T] [-config F]

KIND is one of %s.
The report is kept by the running agent and reaches the collector with the
time it was made, also when the link to the collector is down.`

// parseCase reads the command line of `idk-agent case` into a report,
// checked as the agent will check it. code is non-zero on an error,
// already written to stderr.
func parseCase(args []string, stderr io.Writer) (rep casereport.Report, cfgPath string, code int) {
	fs := flag.NewFlagSet("case", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", "agent.toml", "the agent's configuration file")
	fs.StringVar(&rep.NumSnim, "num-snim", "", "NUM_SNIM: the image the step concerns")
	docs := fs.String("docs", "", "document numbers (ДТ, МДП, transit declaration, waybill), separated by commas")
	fs.StringVar(&rep.CaseID, "case", "", "the collector's case ID, when known")
	fs.StringVar(&rep.By, "by", "", "who reports it (required)")
	fs.BoolVar(&rep.Suspected, "suspected", false, "decision only: «Объект под подозрением»")
	fs.StringVar(&rep.Risk.KodTeh, "kod-teh", "", "risk_detected: KOD_TEH, the technological operation (01..21, 99)")
	fs.StringVar(&rep.Risk.VidPr, "vid-pr", "", "risk_detected: VID_PR, the kind of ПР (11, 12, 13, 20, 21, 55)")
	fs.StringVar(&rep.Risk.KodToPr, "kod-to-pr", "", "risk_detected: KOD_TO_PR, the customs body that approved the ПР")
	fs.StringVar(&rep.Risk.DateReg, "date-reg", "", "risk_detected: DATE_REG, the ПР's registration date, DD.MM.YYYY")
	fs.StringVar(&rep.Risk.NumPr, "num-pr", "", "risk_detected: NUM_PR, the ПР's number, 5 digits")
	fs.IntVar(&rep.Risk.DocType, "doc-type", 0, "risk_detected: DOC_TYPE, the kind of document the ПР was identified for (1..10: 4 ДТ, 2 transit declaration, ...)")
	fs.StringVar(&rep.Note, "note", "", "free text for the record; the written reason of a risk_withdrawn")
	fs.Usage = func() {
		fmt.Fprintf(stderr, caseUsage+"\n", strings.Join(casereport.Kinds, ", "))
		fs.PrintDefaults()
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return rep, "", 2
	}
	rep.Kind = args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return rep, "", 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "idk-agent: case: unexpected %q (flags come after the kind)\n", fs.Arg(0))
		return rep, "", 2
	}
	if *docs != "" {
		rep.Docs = strings.Split(*docs, ",")
	}
	// Checked here as well, so that a typing error is answered even when
	// the agent is not running.
	rep, err := rep.Normalise()
	if err != nil {
		fmt.Fprintln(stderr, "idk-agent:", err)
		return rep, "", 2
	}
	return rep, *cfg, 0
}

// caseCommand is `idk-agent case KIND ...`: the shift lead at the scanner
// reports an inspection step to the running agent, which records it in
// its spool for the collector.
func caseCommand(args []string, stdout, stderr io.Writer) int {
	rep, cfgPath, code := parseCase(args, stderr)
	if code != 0 {
		return code
	}
	base, ok := agentAddr(cfgPath, stderr)
	if !ok {
		return 2
	}
	return postCase(base+"/case", rep, stdout, stderr)
}

// postCase sends rep to the running agent at url and prints its answer.
func postCase(url string, rep casereport.Report, stdout, stderr io.Writer) int {
	var rr caseReply
	if err := askAgent(url, rep, &rr); err != nil {
		fmt.Fprintln(stderr, "idk-agent:", err)
		return 1
	}
	if rr.Error != "" {
		fmt.Fprintln(stderr, "idk-agent:", rr.Error)
		return 1
	}
	fmt.Fprintf(stdout, "%s recorded at %s (event %d)", rep.Kind, rr.Time.Local().Format("02.01.2006 15:04:05"), rr.Seq)
	if rep.NumSnim != "" {
		fmt.Fprintf(stdout, " for NUM_SNIM %s", rep.NumSnim)
	}
	fmt.Fprintln(stdout, "; the agent delivers it to the collector with this time")
	return 0
}
