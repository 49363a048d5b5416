package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"idk/collector/national"
	"idk/collector/report"
)

// The national roll-up on real processes: two regions' collectors, each
// with agents shipping scans, one serving its API over HTTPS with its own
// CA, the other over HTTP. The national pull fetches both regions' monthly
// reports byte for byte as each serves them and every office's daily
// report; the national summary's rows are the regions' own summaries and
// its total counts every scan shipped; with one region's collector
// stopped, the pull names it and still pulls the other.
func TestEndToEndNationalRollUp(t *testing.T) {
	type region struct {
		name  string
		posts []string
		scans []int // per agent
		https bool
		env   *Env
		coll  *Proc
		url   string
	}
	regions := []*region{
		{name: "СЗТУ", posts: []string{"10216100"}, scans: []int{3}, https: true},
		{name: "ЦТУ", posts: []string{"10702000", "10702030"}, scans: []int{2, 1}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i, r := range regions {
		env, err := NewEnv(filepath.Join(t.TempDir(), fmt.Sprint("region", i)), bin,
			Options{Agents: len(r.posts), Posts: r.posts, Settle: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		DumpLogsOnFailure(t, env)
		r.env, r.url = env, "http://"+env.HTTPAddr
		if r.https {
			// The API over HTTPS too, with the collector's own
			// certificate, which the region's CA signed for 127.0.0.1.
			addr, err := freeAddr("tcp")
			if err != nil {
				t.Fatal(err)
			}
			conf := filepath.Join(env.Dir, "collector.toml")
			b, err := os.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte("[listen]\n"), []byte(fmt.Sprintf("[listen]\nhttps = %q\n", addr)), 1)
			if err := os.WriteFile(conf, b, 0o644); err != nil {
				t.Fatal(err)
			}
			r.url = "https://" + addr
		}
		if r.coll, err = env.StartCollector(); err != nil {
			t.Fatal(err)
		}
		defer r.coll.Stop()
	}
	// Every agent ships its scans; then the collector holds each file.
	total := 0
	for _, r := range regions {
		for i, n := range r.scans {
			total += n
			a := r.env.Agents[i]
			agent, err := r.env.StartAgent(i)
			if err != nil {
				t.Fatal(err)
			}
			defer agent.Stop()
			manifest := filepath.Join(r.env.Dir, "manifest-"+a.NumIDK+".jsonl")
			sim, err := r.env.Start("scanner-"+a.NumIDK, "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK,
				"-scans", strconv.Itoa(n), "-raw-min", "1000", "-raw-max", "1000", "-docs", "0", "-manifest", manifest)
			if err != nil {
				t.Fatal(err)
			}
			<-sim.done
			exp, err := ReadManifest(manifest)
			if err != nil || len(exp) != n {
				t.Fatalf("%s manifest: %v %v", r.name, exp, err)
			}
			if rep, err := r.env.WaitStoredOf(ctx, a.NumIDK, exp, agent); err != nil || !rep.OK() {
				t.Fatalf("%s %s: %v %v", r.name, a.NumIDK, rep, err)
			}
		}
	}
	loc, err := time.LoadLocation("Europe/Moscow") // the harness collector's store.timezone
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(loc)
	month, day := now.Format("2006-01"), now.Format("2006-01-02")

	apiGet := func(r *region, path string) []byte {
		t.Helper()
		resp, err := r.env.APIGet(path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s GET %s: %s %v %s", r.name, path, resp.Status, err, b)
		}
		return b
	}
	summaryOf := func(r *region) report.MonthlySummary {
		t.Helper()
		var s report.MonthlySummary
		if err := json.Unmarshal(apiGet(r, "/api/v1/reports/monthly/summary?month="+month), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Table 1 lists a scan once its form is in: wait until the regions'
	// summaries count every scan, then publish the month, so that what
	// each serves is a published version, the same bytes on every
	// request.
	for _, r := range regions {
		want := 0
		for _, n := range r.scans {
			want += n
		}
		for got := -1; got != want; {
			got = 0
			for _, o := range summaryOf(r).Offices {
				n, _ := strconv.Atoi(o["KOL_VO_SNIM"])
				got += n
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: summary counts %d scans, want %d", r.name, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
		cmd := exec.Command(filepath.Join(bin, "idk-collector"), "report", "monthly", "-month", month, "-publish", "-by", "ФТС")
		cmd.Dir = r.env.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: publish: %v\n%s", r.name, err, out)
		}
	}

	// The national configuration: each region's API token (the old
	// shared one the harness gives) and, over HTTPS, its CA.
	natDir := t.TempDir()
	var conf strings.Builder
	conf.WriteString("dir = 'reports'\ntimeout = '30s'\n")
	for _, r := range regions {
		ca := ""
		if r.https {
			ca = filepath.Join(r.env.Dir, "certs", "ca.crt")
		}
		fmt.Fprintf(&conf, "[[region]]\nname = %q\nurl = %q\ntoken_file = %q\nca = %q\n", r.name, r.url, filepath.Join(r.env.Dir, "api.token"), ca)
	}
	cfgPath := filepath.Join(natDir, "national.toml")
	if err := os.WriteFile(cfgPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	natCmd := func(want int, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "idk-collector"), append([]string{"national"}, append(args, "-config", cfgPath)...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != want {
			t.Fatalf("national %s: exit %d (%v), want %d\n%s%s", strings.Join(args, " "), code, err, want, stdout.String(), stderr.String())
		}
		return stdout.String() + stderr.String()
	}

	natCmd(0, "pull", "-month", month)
	natCmd(0, "pull", "-date", day)
	for _, r := range regions {
		folder := filepath.Join(natDir, "reports", r.name, month)
		got, err := os.ReadFile(filepath.Join(folder, national.MonthlyFile))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, apiGet(r, "/api/v1/reports/monthly?month="+month)) {
			t.Errorf("%s: the pulled monthly report differs from the one the region serves", r.name)
		}
		// A daily report per office, its table 1 the office's scans.
		for i, kod := range r.posts {
			b, err := os.ReadFile(filepath.Join(folder, "daily-"+day+"-"+kod+".xlsx"))
			if err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			wb, err := report.ReadWorkbook(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s %s: %v", r.name, kod, err)
			}
			if rows := wb[report.Table1.Sheet]; len(rows) != 1+r.scans[i] {
				t.Errorf("%s %s: table 1 has %d rows with the header, want %d", r.name, kod, len(rows), 1+r.scans[i])
			}
		}
		// The fleet that day (table 3 rows), as the region serves it.
		fb, err := os.ReadFile(filepath.Join(folder, national.FleetFile(day)))
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if want := apiGet(r, "/api/v1/availability?date="+day); !bytes.Equal(fb, want) {
			t.Errorf("%s: the pulled fleet differs from the region's:\n%s\nwant\n%s", r.name, fb, want)
		}
	}

	// The national summary: each region's rows are its own summary's,
	// and the total counts every scan shipped.
	sumPath := filepath.Join(natDir, "summary.json")
	natCmd(0, "summary", "-month", month, "-o", sumPath)
	natCmd(0, "summary", "-month", month, "-o", filepath.Join(natDir, "summary.xlsx"))
	var s struct {
		Regions []struct {
			Region  string              `json:"region"`
			Total   map[string]string   `json:"total"`
			Offices []map[string]string `json:"offices"`
		} `json:"regions"`
		Total map[string]string `json:"total"`
	}
	b, err := os.ReadFile(sumPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Total["KOL_VO_SNIM"] != strconv.Itoa(total) {
		t.Errorf("national KOL_VO_SNIM %s, want %d shipped", s.Total["KOL_VO_SNIM"], total)
	}
	if len(s.Regions) != len(regions) {
		t.Fatalf("national summary has %d regions", len(s.Regions))
	}
	for i, r := range regions {
		own := summaryOf(r)
		got := s.Regions[i]
		if got.Region != r.name || len(got.Offices) != len(own.Offices) || len(own.Offices) != len(r.posts) {
			t.Fatalf("%s: national rows %+v, the region's %+v", r.name, got, own.Offices)
		}
		for j, o := range own.Offices {
			for k, v := range o {
				if got.Offices[j][k] != v {
					t.Errorf("%s office %s: %s %q in the national summary, %q in the region's", r.name, o["KOD_TO"], k, got.Offices[j][k], v)
				}
			}
		}
		if len(own.Offices) == 1 {
			// One office: the region's row is that office's.
			for k, v := range got.Total {
				if own.Offices[0][k] != v {
					t.Errorf("%s: region row %s %q, its office row %q", r.name, k, v, own.Offices[0][k])
				}
			}
		}
		want := 0
		for _, n := range r.scans {
			want += n
		}
		if got.Total["KOL_VO_SNIM"] != strconv.Itoa(want) {
			t.Errorf("%s: region row KOL_VO_SNIM %s, want %d", r.name, got.Total["KOL_VO_SNIM"], want)
		}
	}

	// One region down: named, the other pulled all the same.
	down := regions[1]
	if err := down.coll.Stop(); err != nil {
		t.Fatal(err)
	}
	pulled := func() time.Time {
		t.Helper()
		m, err := national.ReadManifest(filepath.Join(natDir, "reports"), regions[0].name, month)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range m.Files {
			if e.Name == national.MonthlyFile {
				return e.Pulled
			}
		}
		t.Fatalf("%s: no monthly report in the manifest", regions[0].name)
		return time.Time{}
	}
	before := pulled()
	out := natCmd(1, "pull", "-month", month)
	if !strings.Contains(out, down.name+": FAILED") || !strings.Contains(out, "regions failed: "+down.name) {
		t.Errorf("the region down is not named:\n%s", out)
	}
	if !pulled().After(before) {
		t.Errorf("%s not pulled again with %s down", regions[0].name, down.name)
	}
	if !strings.Contains(out, regions[0].name+": "+filepath.Join(natDir, "reports", regions[0].name, month, national.MonthlyFile)) {
		t.Errorf("%s not pulled with %s down:\n%s", regions[0].name, down.name, out)
	}
}
