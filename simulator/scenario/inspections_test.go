package scenario

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"

	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/collector/pki"
	"idk/collector/registry"
	"idk/collector/server"
	"idk/collector/store"
	"idk/internal/clock"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

// correctionsToken grants the corrections role in the in-process
// collector's API.
const correctionsToken = "corrections-token-of-the-test"

const (
	plantedIDK   = "850591"
	plantedIDK2  = "850592" // the second ИДК of the post in PlantedDay
	plantedKodTO = "10802000"
)

// collector is an in-process collector: the real QUIC server, store and
// cases engine, with the engine's HTTP API.
type collector struct {
	addr, certs string
	engine      *cases.Engine
	api         *httptest.Server
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if _, err := pki.CreateCA(certs, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueCollector(certs, []string{"localhost"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, idk := range []string{plantedIDK, plantedIDK2} {
		if _, err := pki.IssueAgent(certs, idk, pki.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	tlsConf, err := transport.ServerTLS(filepath.Join(certs, pki.CollectorCertFile), filepath.Join(certs, pki.CollectorKeyFile), filepath.Join(certs, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	tlsConf.NextProtos = []string{protocol.ALPN}
	st, err := store.Open(filepath.Join(dir, "data"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	engine, err := cases.Open(filepath.Join(dir, "cases.db"), moscow(t), clock.Real())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	feed := cases.NewFeed(engine, nil)
	events := ingest.New(ingest.Config{Log: ingest.FromStore(st),
		Consumers: map[string]ingest.Consumer{"cases": feed}, Followers: []ingest.Follower{feed}})
	if err := events.Load(); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{
		Store: st, Ingest: events, Metrics: server.NewMetrics(prometheus.NewRegistry()),
		Identify: func(cs tls.ConnectionState) (string, error) {
			if len(cs.PeerCertificates) == 0 {
				return "", errors.New("no certificate")
			}
			return pki.IdentityFromCert(cs.PeerCertificates[0])
		},
		Enrolled: func(numIDK string) (string, bool) {
			return plantedKodTO, numIDK == plantedIDK || numIDK == plantedIDK2
		},
		OnHello: func(dev *idkpb.Device) { engine.SetDevice(registry.DeviceFromProto(dev)) },
	})
	ln, err := quic.ListenAddr("127.0.0.1:0", tlsConf, transport.QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
	// Backdated events need the corrections role, as behind the
	// collector's API.
	api := httptest.NewServer(cases.Corrections(engine.Handler(), correctionsToken))
	t.Cleanup(api.Close)
	return &collector{addr: ln.Addr().String(), certs: certs, engine: engine, api: api}
}

// agent speaks the wire protocol as an agent whose clock is skew off.
type agent struct {
	conn   *quic.Conn
	w      *protocol.Writer
	r      *protocol.Reader
	seq    uint64
	skew   time.Duration
	numIDK string
}

func dialAgent(t *testing.T, c *collector, skew time.Duration) *agent {
	return dialAgentAs(t, c, plantedIDK, skew)
}

// dialAgentAs connects as ИДК numIDK, of the planted post.
func dialAgentAs(t *testing.T, c *collector, numIDK string, skew time.Duration) *agent {
	t.Helper()
	conf, err := transport.ClientTLS(filepath.Join(c.certs, pki.AgentCertFile(numIDK)), filepath.Join(c.certs, pki.AgentKeyFile(numIDK)),
		filepath.Join(c.certs, pki.CACertFile), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	conf.NextProtos = []string{protocol.ALPN}
	ctx := context.Background()
	conn, err := quic.DialAddr(ctx, c.addr, conf, transport.QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	hs, _ := conn.OpenStreamSync(ctx)
	hw, hr := protocol.NewWriter(hs), protocol.NewReader(hs)
	hw.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_HELLO})
	hw.Write(&idkpb.Hello{ProtocolVersion: protocol.Version, SpoolEpoch: 1, AgentTimeUnixNano: time.Now().Add(skew).UnixNano(),
		Device: &idkpb.Device{NumIdk: numIDK, TypeIdk: 2, KodTo: plantedKodTO, NaimTo: "ДАГЕСТАНСКАЯ", NaimZtk: "МАПП ЯРАГ-КАЗМАЛЯР", DislIdk: 1}})
	var rep idkpb.HelloReply
	if err := hr.Read(&rep); err != nil || rep.Error != "" {
		t.Fatalf("hello: %v %q", err, rep.Error)
	}
	es, _ := conn.OpenStreamSync(ctx)
	a := &agent{conn: conn, w: protocol.NewWriter(es), r: protocol.NewReader(es), skew: skew, numIDK: numIDK}
	a.w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_EVENTS})
	return a
}

// send delivers events that happened at collector time at, stamped with
// the agent's (skewed) clock, and waits for the collector's ack.
func (a *agent) send(t *testing.T, at time.Time, bodies ...func(*idkpb.Event)) {
	t.Helper()
	var batch idkpb.EventBatch
	for _, b := range bodies {
		a.seq++
		ev := &idkpb.Event{Seq: a.seq, TimeUnixNano: at.Add(a.skew).UnixNano()}
		b(ev)
		batch.Events = append(batch.Events, ev)
	}
	if err := a.w.Write(&batch); err != nil {
		t.Fatal(err)
	}
	var ack idkpb.EventAck
	if err := a.r.Read(&ack); err != nil || ack.Error != "" {
		t.Fatalf("ack: %v %q", err, ack.Error)
	}
}

func state(s idkpb.DeviceState) func(*idkpb.Event) {
	return func(ev *idkpb.Event) {
		ev.Body = &idkpb.Event_State{State: &idkpb.StateChange{State: s, Source: "controller"}}
	}
}

func form(numSnim string, suspected bool, docs []string) func(*idkpb.Event) {
	return func(ev *idkpb.Event) {
		d := idkpb.Decision_DECISION_NOT_SUSPECTED
		if suspected {
			d = idkpb.Decision_DECISION_SUSPECTED
		}
		content := []byte(fmt.Sprintf("<CargoRIWForm><NumSnim>%s</NumSnim></CargoRIWForm>", numSnim))
		sum := sha256.Sum256(content)
		f := &idkpb.Form{NumSnim: numSnim, Decision: d, Operator: "operator01"}
		if len(docs) > 0 {
			f.CustomsInfo1 = docs[0]
		}
		ev.Body = &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: numSnim, Revision: 1, Content: content, Sha256: sum[:], Form: f}}
	}
}

func (c *collector) post(t *testing.T, at time.Time, st InspectionStep) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"kind": st.Kind, "time": at.Format(time.RFC3339Nano), "num_idk": plantedIDK,
		"num_snim": st.NumSnim, "docs": st.Docs, "by": "ИНСПЕКТОР ОТДЕЛА", "source": "api"})
	resp, err := http.Post(c.api.URL+"/api/v1/cases/events", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		var msg bytes.Buffer
		msg.ReadFrom(resp.Body)
		t.Fatalf("%s at %v: %s: %s", st.Kind, at, resp.Status, msg.String())
	}
}

// runPlanted plays the planted inspections with the agent's clock skew off
// and returns the table 4 rows the collector produced.
func runPlanted(t *testing.T, skew time.Duration) (Inspections, []cases.Row) {
	return runPlantedC(t, startCollector(t), skew)
}

func runPlantedC(t *testing.T, c *collector, skew time.Duration) (Inspections, []cases.Row) {
	plan := PlantedInspections(plantedIDK)
	a := dialAgent(t, c, skew)
	// The day happened this morning: every event is in the past, as when
	// officers enter their events after the fact.
	base := time.Now().Add(-8 * time.Hour).Truncate(time.Minute)
	steps := append([]InspectionStep(nil), plan.Steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	a.send(t, base.Add(-time.Minute), state(idkpb.DeviceState_DEVICE_STATE_WAITING))
	for _, st := range steps {
		at := base.Add(st.At)
		switch {
		case st.Via == ByAPI:
			c.post(t, at, st)
		case st.Kind == "arrival":
			a.send(t, at, state(idkpb.DeviceState_DEVICE_STATE_WORKING))
		case st.Kind == "scan":
			a.send(t, at, func(ev *idkpb.Event) { ev.Body = &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: st.NumSnim}} })
		case st.Kind == "decision":
			a.send(t, at, form(st.NumSnim, st.Suspected, st.Docs), state(idkpb.DeviceState_DEVICE_STATE_WAITING))
		default:
			t.Fatalf("no way to send %+v", st)
		}
	}
	if err := c.engine.Tick(); err != nil {
		t.Fatal(err)
	}
	rows, err := c.engine.Breaches(base.Add(-24*time.Hour), base.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return plan, rows
}

func checkPlanted(t *testing.T, plan Inspections, rows []cases.Row) {
	t.Helper()
	type key struct{ snim, rule, value string }
	want := map[key]bool{}
	for _, b := range plan.Breaches {
		want[key{b.NumSnim, b.Rule, b.Value}] = true
	}
	got := map[key]bool{}
	for _, r := range rows {
		for rule, v := range map[string]string{"time_1": r.TIME_1, "time_2": r.TIME_2, "time_3": r.TIME_3} {
			if v != "" {
				got[key{r.NUM_SNIM, rule, v}] = true
			}
		}
		if r.NUM_IDK != plantedIDK || r.KOD_TO != "10802000" || r.NAIM_ZTK != "МАПП ЯРАГ-КАЗМАЛЯР" || r.TYPE_IDK != 2 || r.DISL_IDK != 1 {
			t.Errorf("row identity: %+v", r)
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("planted breach missing: %+v", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("false breach: %+v", k)
		}
	}
	if len(rows) != len(plan.Breaches) {
		t.Errorf("%d table 4 rows, want %d: %+v", len(rows), len(plan.Breaches), rows)
	}
}

// Each rule at 14:59, 15:00 and 15:01 (29:59, 30:00, 30:01 for TIME_3):
// exactly the planted rows, no miss, no false breach.
func TestPlantedBreachesExactly(t *testing.T) {
	plan, rows := runPlanted(t, 0)
	checkPlanted(t, plan, rows)
}

// The same with an agent whose clock runs 7 minutes slow: the collector
// measures the offset at the hello and corrects the agent's event times.
func TestPlantedBreachesWithAgentClockSevenMinutesOff(t *testing.T) {
	plan, rows := runPlanted(t, -7*time.Minute)
	checkPlanted(t, plan, rows)
}

// postStep posts an API step of ИДК numIDK and returns the answer.
//
// A step with a reason is a correction, posted with the corrections role.
func (c *collector) postStep(t *testing.T, at time.Time, numIDK string, st InspectionStep, corrector bool) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"kind": st.Kind, "time": at.Format(time.RFC3339Nano), "num_idk": numIDK,
		"num_snim": st.NumSnim, "docs": st.Docs, "ver_scan": st.VerScan, "reason": st.Reason,
		"by": "ИНСПЕКТОР ОТДЕЛА", "source": "api"})
	req, err := http.NewRequest(http.MethodPost, c.api.URL+"/api/v1/cases/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if corrector {
		req.Header.Set(cases.CorrectionsHeader, correctionsToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msg bytes.Buffer
	msg.ReadFrom(resp.Body)
	return resp.StatusCode, msg.String()
}

// heldEvent is an agent's event kept in its spool while the link to the
// collector is down.
type heldEvent struct {
	at   time.Time
	body func(*idkpb.Event)
}

// runPlantedDay plays d, ending now, as its agents and officers would:
// the agents speak the wire protocol (device states from the controller
// where there is one, scans, forms, the shift lead's reports), officers
// post to the API. It returns the day's start and the table 4 rows.
func runPlantedDay(t *testing.T, c *collector, d Day) (time.Time, []cases.Row) {
	t.Helper()
	if err := c.engine.SetBackdateWindow(d.BackdateWindow); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-d.Length).Truncate(time.Minute)
	agents := map[string]*agent{}
	controller := map[string]bool{}
	shown := map[string]idkpb.DeviceState{} // what the controller shows while its link is up
	down := map[string]bool{}               // the agent's link to the collector is down
	held := map[string][]heldEvent{}
	for _, dev := range d.Devices {
		agents[dev.NumIDK] = dialAgentAs(t, c, dev.NumIDK, 0)
		if controller[dev.NumIDK] = dev.Controller; dev.Controller {
			agents[dev.NumIDK].send(t, base.Add(-time.Minute), state(idkpb.DeviceState_DEVICE_STATE_WAITING))
			shown[dev.NumIDK] = idkpb.DeviceState_DEVICE_STATE_WAITING
		}
	}
	deliver := func(idk string, at time.Time, bodies ...func(*idkpb.Event)) {
		if down[idk] {
			for _, b := range bodies {
				held[idk] = append(held[idk], heldEvent{at: at, body: b})
			}
			return
		}
		agents[idk].send(t, at, bodies...)
	}
	steps := append([]InspectionStep(nil), d.Steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	var later []InspectionStep
	for _, st := range steps {
		at := base.Add(st.At)
		idk := cmp.Or(st.NumIDK, plantedIDK)
		switch {
		case st.Late:
			later = append(later, st)
		case st.Via == ByAPI:
			if st.Refused {
				// Refused from anyone: without the corrections role (403),
				// and from a corrector who gives no reason (400).
				for _, corr := range []struct {
					role   bool
					status int
				}{{false, http.StatusForbidden}, {true, http.StatusBadRequest}} {
					if status, msg := c.postStep(t, at, idk, st, corr.role); status != corr.status || !strings.Contains(msg, "reason") {
						t.Fatalf("%s at %v with no reason, older than the window, corrector %v: %d %s; want %d naming reason",
							st.Kind, at, corr.role, status, msg, corr.status)
					}
				}
				break
			}
			if status, msg := c.postStep(t, at, idk, st, st.Reason != ""); status != http.StatusOK {
				t.Fatalf("%s at %v: %d %s", st.Kind, at, status, msg)
			}
		case st.Via == ByPost:
			deliver(idk, at, func(ev *idkpb.Event) {
				ev.Body = &idkpb.Event_CaseReport{CaseReport: &idkpb.CaseReport{Kind: st.Kind, NumSnim: st.NumSnim,
					Docs: st.Docs, Suspected: st.Suspected, By: "СТАРШИЙ СМЕНЫ"}}
			})
		case st.Kind == "arrival":
			shown[idk] = idkpb.DeviceState_DEVICE_STATE_WORKING
			deliver(idk, at, state(shown[idk]))
		case st.Kind == "scan":
			deliver(idk, at, func(ev *idkpb.Event) { ev.Body = &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: st.NumSnim}} })
		case st.Kind == "decision" && controller[idk]:
			shown[idk] = idkpb.DeviceState_DEVICE_STATE_WAITING
			deliver(idk, at, form(st.NumSnim, st.Suspected, st.Docs), state(shown[idk]))
		case st.Kind == "decision":
			deliver(idk, at, form(st.NumSnim, st.Suspected, st.Docs))
		case st.Kind == LinkLost:
			deliver(idk, at, state(idkpb.DeviceState_DEVICE_STATE_UNKNOWN))
		case st.Kind == LinkBack:
			deliver(idk, at, state(shown[idk]))
		case st.Kind == Outage:
			agents[idk].conn.CloseWithError(0, "outage")
			down[idk] = true
		case st.Kind == OutageOver:
			// A new connection and hello; the spool's sequence numbers go on.
			a := dialAgentAs(t, c, idk, agents[idk].skew)
			a.seq = agents[idk].seq
			agents[idk], down[idk] = a, false
			for _, h := range held[idk] {
				a.send(t, h.at, h.body)
			}
			held[idk] = nil
		default:
			t.Fatalf("no way to play %+v", st)
		}
	}
	for _, st := range later {
		if status, msg := c.postStep(t, base.Add(st.At), cmp.Or(st.NumIDK, plantedIDK), st, st.Reason != ""); status != http.StatusOK {
			t.Fatalf("late %s at %v: %d %s", st.Kind, base.Add(st.At), status, msg)
		}
	}
	if err := c.engine.Tick(); err != nil {
		t.Fatal(err)
	}
	rows, err := c.engine.Breaches(base.Add(-24*time.Hour), base.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return base, rows
}

// One day at a 2-ИДК post with a link flap, a post's report through an
// outage, scans without a controller, a test scan, a refused backdated
// event and a correction produces exactly its ground-truth table 4, and
// the corrected row stays in the history.
func TestPlantedBreachesDayAtTwoIDKPost(t *testing.T) {
	c := startCollector(t)
	d := PlantedDay(plantedIDK, plantedIDK2)
	base, rows := runPlantedDay(t, c, d)

	loc := moscow(t)
	var want []cases.Row
	for _, r := range d.Rows {
		want = append(want, cases.Row{KOD_TO: plantedKodTO, NAIM_TO: "ДАГЕСТАНСКАЯ", NAIM_ZTK: "МАПП ЯРАГ-КАЗМАЛЯР",
			TYPE_IDK: 2, NUM_IDK: r.NumIDK, DISL_IDK: 1, DATE_NAR: base.Add(r.Deadline).In(loc).Format("02.01.2006"),
			NUM_SNIM: r.NumSnim, TIME_1: r.TIME_1, TIME_2: r.TIME_2, TIME_3: r.TIME_3})
	}
	got := make([]cases.Row, len(rows))
	for i, r := range rows {
		if r.Running {
			t.Errorf("row of case %s still running: %+v", r.ID, r)
		}
		r.ID, r.Running = "", false
		got[i] = r
	}
	bySnim := func(a, b cases.Row) int { return cmp.Compare(a.NUM_SNIM, b.NUM_SNIM) }
	slices.SortFunc(want, bySnim)
	slices.SortFunc(got, bySnim)
	if !slices.Equal(got, want) {
		t.Errorf("table 4 rows:\n got %+v\nwant %+v", got, want)
	}

	hist, err := c.engine.BreachHistory(base.Add(-24*time.Hour), base.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, snim := range d.Corrected {
		// The breach may be older than the scan: any version names it.
		i := slices.IndexFunc(hist, func(h cases.History) bool {
			return slices.ContainsFunc(h.Versions, func(v cases.Version) bool { return v.Row.NUM_SNIM == snim })
		})
		if i < 0 {
			t.Errorf("corrected %s missing from the history", snim)
			continue
		}
		h := hist[i]
		first, last := h.Versions[0], h.Versions[len(h.Versions)-1]
		if h.Current != nil || len(h.Versions) < 2 || !first.Standing || first.Row.TIME_2 == "" || last.Standing || last.Row.TIME_2 != "" {
			t.Errorf("history of corrected %s (case %s): current %+v, versions %+v", snim, h.ID, h.Current, h.Versions)
		}
	}
}
