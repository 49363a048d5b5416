package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"idk/collector/cases"
	"idk/collector/config"
	"idk/internal/secretfile"
)

// loadOrCreateToken reads the token of setting (e.g. api.token_file)
// from path, creating a random one (0600) on first start so that the API
// is never open by default.
func loadOrCreateToken(setting, path string) (string, error) {
	tok, err := secretfile.Read(path)
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	tok = hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("%s: write %s: %w", setting, path, err)
	}
	return tok, nil
}

// caseCommand is the CLI of the inspection API, for officers and scripts:
//
//	idk-collector case risk_detected -num-idk 850591 -docs 10702070/170717/0012345 -by ИВАНОВ
//	idk-collector case docs_returned -num-snim 201701040006080003 -num-idk 850591 -by ПЕТРОВ
//	idk-collector breach list [-without-reason] [-from 2026-11-01 -to 2026-11-30]
//	idk-collector breach reason -id CASE -reason "СБОРНЫЙ ГРУЗ" -by ИВАНОВ
func caseCommand(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := reportAPIFlags(fs)
	numIDK := fs.String("num-idk", "", "NUM_IDK of the ИДК")
	numSnim := fs.String("num-snim", "", "NUM_SNIM of the scan, if known")
	docs := fs.String("docs", "", "document numbers (ДТ, transit, МДП), comma-separated")
	caseID := fs.String("case", "", "case id, if known")
	at := fs.String("at", "", "when it happened, RFC 3339 (default: now)")
	by := fs.String("by", "", "who reports it (required)")
	suspected := fs.Bool("suspected", false, "with decision: «Объект под подозрением»")
	id := fs.String("id", "", "breach (case) id, with reason")
	reason := fs.String("reason", "", "with breach reason: the reason for the breach (PRICH_NAR); with case: why an event older than the backdating window comes late, or why a risk is withdrawn (risk_withdrawn)")
	correct := fs.Bool("correct", false, "with case: post as a correction, with the corrections token (api.corrections_token_file), needed with the old shared token for an event older than the backdating window (a head of post's own token needs none)")
	withoutReason := fs.Bool("without-reason", false, "with list: only breaches still without a reason")
	from := fs.String("from", "", "with list: first day, YYYY-MM-DD")
	to := fs.String("to", "", "with list: last day, YYYY-MM-DD")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: idk-collector case <risk_detected|docs_handed|carrier_informed|arrival|decision|docs_returned|act_handed|risk_withdrawn> -num-idk N -by NAME [flags]")
		fmt.Fprintln(stderr, "       idk-collector case KIND ... -at TIME -reason TEXT -correct   (an event older than the backdating window)")
		fmt.Fprintln(stderr, "       idk-collector breach list [-without-reason] [-from D -to D] | reason -id ID -reason TEXT -by NAME")
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return 2
	}
	verb := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	c, err := api.client()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 2
	}
	var out any
	switch {
	case cmd == "case":
		req := cases.EventRequest{Kind: verb, Time: *at, NumIDK: *numIDK, NumSnim: *numSnim, CaseID: *caseID,
			By: *by, Suspected: *suspected, Source: "cli", Reason: *reason}
		if *correct {
			cfg, err := config.Load(*api.config)
			if err != nil {
				fmt.Fprintln(stderr, "idk-collector:", err)
				return 2
			}
			tok, err := os.ReadFile(cfg.API.CorrectionsTokenFile)
			if err != nil {
				fmt.Fprintf(stderr, "idk-collector: corrections token (api.corrections_token_file in %s): %v\n", *api.config, err)
				return 2
			}
			c.corrections = strings.TrimSpace(string(tok))
		}
		if *docs != "" {
			req.Docs = strings.Split(*docs, ",")
		}
		err = c.do(http.MethodPost, "/api/v1/cases/events", req, &out)
	case verb == "list":
		q := "?without_reason=1"
		if !*withoutReason {
			q = "?from=" + *from + "&to=" + *to
		}
		err = c.do(http.MethodGet, "/api/v1/breaches"+q, nil, &out)
	case verb == "reason":
		err = c.do(http.MethodPost, "/api/v1/breaches/reason", cases.ReasonRequest{ID: *id, Reason: *reason, By: *by}, &out)
	default:
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector:", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	return 0
}

type apiClient struct{ base, token, corrections string }

func (c apiClient) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	b, _, err := c.send(method, path, rd, 15*time.Second, 1<<24)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// send makes one authenticated request and returns the answer's body (up
// to limit bytes) and header; an answer of 300 or more is an error that
// carries the body, the server's words.
func (c apiClient) send(method, path string, body io.Reader, timeout time.Duration, limit int64) ([]byte, http.Header, error) {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.corrections != "" {
		req.Header.Set(cases.CorrectionsHeader, c.corrections)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("is the collector running? %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return nil, nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, resp.Header, nil
}
