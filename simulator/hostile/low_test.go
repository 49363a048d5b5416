package hostile

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"idk/protocol/idkpb"
	"idk/simulator/harness"
)

// Finding 9 (low): a batch that repeats a sequence number is refused whole
// and stores neither event; the same number sent alone afterwards is new
// to the collector.
func TestEventBatchRepeatingSequenceIsRefusedWhole(t *testing.T) {
	env, _ := startEnv(t, harness.Options{})
	c := connect(t, env, idkA)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	s1, s2 := scanNumber(now, idkA, 1), scanNumber(now, idkA, 2)
	f1, f2 := []byte("<form>one</form>"), []byte("<form>two</form>")
	e1 := c.formRevision(s1, 1, f1, nil, now)
	e2 := c.formRevision(s2, 1, f2, nil, now)
	e2.Seq = e1.Seq // the repeat
	ack, err := c.sendEvents(ctx, e1, e2)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Error == "" {
		t.Errorf("a batch repeating seq %d was acknowledged (stored %d, duplicates %d)", e1.Seq, ack.Stored, ack.Duplicates)
	}
	for _, f := range storedFiles(t, env) {
		if f.SHA256 == hexSum(f1) || f.SHA256 == hexSum(f2) {
			t.Errorf("an event of the refused batch was stored: %s", f.StoredAs)
		}
	}
	ack, err = c.sendEvents(ctx, e1)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Error != "" || ack.Stored != 1 || ack.Duplicates != 0 {
		t.Errorf("seq %d sent alone after the refused batch: stored %d, duplicates %d, error %q; want stored 1 (nothing of the batch was kept)",
			e1.Seq, ack.Stored, ack.Duplicates, ack.Error)
	}
}

// Finding 9: JSON with trailing data is not an event.
func TestCasesEventsRefuseTrailingGarbage(t *testing.T) {
	env, _ := startEnv(t, harness.Options{})
	for _, body := range []string{
		`{"kind": "risk_detected", "num_idk": "850591", "docs": ["10702070/170717/0012345"], "by": "ИВАНОВ"} garbage`,
		`{"kind": "risk_detected", "num_idk": "850591", "docs": ["10702070/170717/0012345"], "by": "ИВАНОВ"}{"kind": "act_handed"}`,
	} {
		status, answer, err := apiPost(env, "/api/v1/cases/events", body)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusBadRequest {
			t.Errorf("body %q: %d %s; want 400", body, status, strings.TrimSpace(answer))
		}
	}
}

// Finding 9: the cases API takes only well-formed ИДК numbers (a number
// becomes a metric label and a key).
func TestCasesAPIRefusesBadNumIDK(t *testing.T) {
	env, _ := startEnv(t, harness.Options{})
	for _, num := range []string{"", "../850591", "850591\"} x", strings.Repeat("9", 300), "НОМЕР", "85\u202e0591"} {
		body := fmt.Sprintf(`{"kind": "risk_detected", "num_idk": %q, "docs": ["10702070/170717/0012345"], "by": "ИВАНОВ"}`, num)
		status, answer, err := apiPost(env, "/api/v1/cases/events", body)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusBadRequest {
			t.Errorf("num_idk %q: %d %s; want 400", num, status, strings.TrimSpace(answer))
		}
	}
}

// Finding 9: /metrics carries counts, not where a mobile ИДК stands.
func TestMetricsCarryNoCoordinates(t *testing.T) {
	env, _ := startEnv(t, harness.Options{})
	c := connect(t, env, idkA)
	now := time.Now()
	const lat, lon = 42.987654, 47.512345
	site := &idkpb.Site{NaimZtk: "МАПП ЯРАГ-КАЗМАЛЯР", KodTo: kodTO, NaimTo: "ДАГЕСТАНСКАЯ", Disl: 1, Lat: lat, Lon: lon}
	c.mustEvents(t,
		&idkpb.Event{Seq: c.nextSeq(), TimeUnixNano: now.UnixNano(), Body: &idkpb.Event_State{State: &idkpb.StateChange{
			State: idkpb.DeviceState_DEVICE_STATE_WAITING, Source: "gps", Site: site}}},
		&idkpb.Event{Seq: c.nextSeq(), TimeUnixNano: now.UnixNano(), Body: &idkpb.Event_Position{Position: &idkpb.Position{
			Lat: lat, Lon: lon, Valid: true}}})
	time.Sleep(time.Second) // the tracker takes events after they are stored
	resp, err := http.Get("http://" + env.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		// Requiring a token for /metrics is allowed; then nothing leaks.
		t.Logf("/metrics without a token: %s", resp.Status)
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.Contains(line, "latitude") || strings.Contains(line, "longitude") ||
			strings.Contains(line, "42.98") || strings.Contains(line, "47.51") {
			t.Errorf("/metrics gives away the position: %s", line)
		}
	}
}

// Finding 9: a file stream that carries an invalid frame is told why
// before it ends, both where the offer should be and where a chunk
// should be.
func TestInvalidFrameOnFileStreamGetsErrorReply(t *testing.T) {
	env, _ := startEnv(t, harness.Options{})
	c := connect(t, env, idkA)
	now := time.Now()
	snim := scanNumber(now, idkA, 1)
	// Not a protobuf message: field 1 as a varint that never ends.
	garbage := []byte{10, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := c.openFile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.st.Write(garbage)
	if msg := readErrorReply(f); msg == "" {
		t.Error("an invalid frame in place of the offer: the stream ended without an error reply")
	} else {
		t.Logf("in place of the offer: %q", msg)
	}
	f.end()

	data := content("frame", 5000)
	f, rep, err := c.offer(ctx, offerOf(snim, "doc_001.jpg", data, now))
	if err != nil {
		t.Fatal(err)
	}
	defer f.end()
	if rep.Status != idkpb.FileOfferReply_STATUS_SEND {
		t.Fatalf("offer: %v %q", rep.Status, rep.Error)
	}
	f.st.Write(garbage)
	if msg := readErrorReply(f); msg == "" {
		t.Error("an invalid frame in place of a chunk: the stream ended without an error reply")
	} else {
		t.Logf("in place of a chunk: %q", msg)
	}
}

// readErrorReply reads one frame and returns the error it carries, as a
// FileOfferReply or a FileResult; "" if the stream ended first or the
// frame carries none.
func readErrorReply(f *fileStream) string {
	f.st.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := readFrame(f.st)
	if err != nil {
		return ""
	}
	var rep idkpb.FileOfferReply
	if proto.Unmarshal(b, &rep) == nil && rep.Error != "" {
		return rep.Error
	}
	var res idkpb.FileResult
	if proto.Unmarshal(b, &res) == nil && res.Error != "" {
		return res.Error
	}
	return ""
}
