package availability

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"idk/collector/auth"
	"idk/internal/httpjson"
)

// maxAckBody bounds an ack request: three short strings.
const maxAckBody = 64 << 10

// Handler serves the tracker as JSON:
//
//	GET  /api/v1/availability?num_idk=N&date=YYYY-MM-DD
//	     table 3 availability rows; every ИДК if num_idk is empty; today
//	     (in the tracker's location) if date is empty
//	GET  /api/v1/incidents?num_idk=N
//	     incidents, every ИДК if num_idk is empty
//	POST /api/v1/incidents/ack   {"num_idk": "...", "id": "...", "by": "..."}
//	     acknowledges an incident and answers with it
//	POST /api/v1/incidents/{id}/report   {"num_idk": "...", "step": "...", "by": "..."}
//	     records a reporting step (request, head, its_ods) of the incident
//	     and answers {"recorded": bool, "message": "...", "incident": {...}}:
//	     recorded is false when the step had been reported already, and the
//	     first report stands
//
// A bad request (a malformed, future or no longer kept date; an unknown or
// repeated parameter; a body field missing; an unknown step) is answered
// 400 with a message naming the parameter; an unknown ИДК or incident 404.
func (t *Tracker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/availability", t.serveAvailability)
	mux.HandleFunc("GET /api/v1/incidents", t.serveIncidents)
	mux.HandleFunc("POST /api/v1/incidents/ack", t.serveAck)
	mux.HandleFunc("POST /api/v1/incidents/{id}/report", t.serveReport)
	return mux
}

func (t *Tracker) serveAvailability(w http.ResponseWriter, r *http.Request) {
	q, ok := httpjson.Query(w, r, "num_idk", "date")
	if !ok {
		return
	}
	now := t.clock.Now()
	day := now
	if s := q.Get("date"); s != "" {
		d, err := time.ParseInLocation("2006-01-02", s, t.loc)
		if err != nil {
			http.Error(w, fmt.Sprintf("bad date parameter %q: want YYYY-MM-DD", s), http.StatusBadRequest)
			return
		}
		day = d
	}
	from, _ := dayBounds(day, t.loc)
	today, _ := dayBounds(now, t.loc)
	if from.After(today) {
		http.Error(w, fmt.Sprintf("bad date parameter %s: it is in the future", from.Format("2006-01-02")), http.StatusBadRequest)
		return
	}
	// Every day from the first midnight within Retention is exact; older
	// ones are computed from stored events, not here.
	cut := now.Add(-Retention)
	oldest, next := dayBounds(cut, t.loc)
	if oldest.Before(cut) {
		oldest = next
	}
	if from.Before(oldest) {
		http.Error(w, fmt.Sprintf("bad date parameter %s: the collector keeps the days from %s on in memory",
			from.Format("2006-01-02"), oldest.Format("2006-01-02")), http.StatusBadRequest)
		return
	}
	nums, ok := t.selectDevices(w, q.Get("num_idk"))
	if !ok {
		return
	}
	rows := []Row{}
	for _, n := range nums {
		rows = append(rows, t.Rows(n, day)...)
	}
	httpjson.Write(w, rows)
}

func (t *Tracker) serveIncidents(w http.ResponseWriter, r *http.Request) {
	q, ok := httpjson.Query(w, r, "num_idk")
	if !ok {
		return
	}
	nums, ok := t.selectDevices(w, q.Get("num_idk"))
	if !ok {
		return
	}
	incs := []Incident{}
	for _, n := range nums {
		incs = append(incs, t.Incidents(n)...)
	}
	httpjson.Write(w, incs)
}

// ackRequest is the body of POST /api/v1/incidents/ack.
type ackRequest struct {
	NumIDK string `json:"num_idk"`
	ID     string `json:"id"`
	By     string `json:"by"`
}

func (t *Tracker) serveAck(w http.ResponseWriter, r *http.Request) {
	var req ackRequest
	if !httpjson.Decode(w, r, &req, maxAckBody, `{"num_idk", "id", "by"}`) {
		return
	}
	req.By = auth.By(r, req.By)
	for _, f := range []struct{ name, value string }{{"num_idk", req.NumIDK}, {"id", req.ID}, {"by", req.By}} {
		if strings.TrimSpace(f.value) == "" {
			http.Error(w, fmt.Sprintf("missing %s in body", f.name), http.StatusBadRequest)
			return
		}
	}
	if _, ok := t.selectDevices(w, req.NumIDK); !ok {
		return
	}
	if err := t.Ack(req.NumIDK, req.ID, req.By); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrUnknownIncident) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	for _, inc := range t.Incidents(req.NumIDK) {
		if inc.ID == req.ID {
			httpjson.Write(w, inc)
			return
		}
	}
	// Acked, then dropped from memory in between: the ack itself stands.
	w.WriteHeader(http.StatusNoContent)
}

// reportRequest is the body of POST /api/v1/incidents/{id}/report.
type reportRequest struct {
	NumIDK string `json:"num_idk"`
	Step   string `json:"step"`
	By     string `json:"by"`
}

// reportAnswer is the answer to a reporting step.
type reportAnswer struct {
	Recorded bool      `json:"recorded"`
	Message  string    `json:"message"`
	Incident *Incident `json:"incident"` // null if dropped from memory meanwhile
}

func (t *Tracker) serveReport(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req reportRequest
	if !httpjson.Decode(w, r, &req, maxAckBody, `{"num_idk", "step", "by"}`) {
		return
	}
	req.By = auth.By(r, req.By)
	for _, f := range []struct{ name, value string }{{"num_idk", req.NumIDK}, {"step", req.Step}, {"by", req.By}} {
		if strings.TrimSpace(f.value) == "" {
			http.Error(w, fmt.Sprintf("missing %s in body", f.name), http.StatusBadRequest)
			return
		}
	}
	if !knownStep(req.Step) {
		http.Error(w, fmt.Sprintf("unknown step %q: want one of %s", req.Step, stepNames()), http.StatusBadRequest)
		return
	}
	if _, ok := t.selectDevices(w, req.NumIDK); !ok {
		return
	}
	rep, recorded, err := t.Report(req.NumIDK, id, req.Step, req.By)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrUnknownIncident) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	ans := reportAnswer{Recorded: true, Message: fmt.Sprintf("step %s recorded", req.Step)}
	if !recorded {
		ans = reportAnswer{Message: fmt.Sprintf("step %s was already reported by %s at %s; the first report stands",
			req.Step, rep.By, rep.At.In(t.loc).Format(time.RFC3339))}
	}
	for _, inc := range t.Incidents(req.NumIDK) {
		if inc.ID == id {
			ans.Incident = &inc
			break
		}
	}
	httpjson.Write(w, ans)
}

// selectDevices is every known ИДК for an empty num, else num if known.
func (t *Tracker) selectDevices(w http.ResponseWriter, num string) ([]string, bool) {
	known := t.Devices()
	if num == "" {
		return known, true
	}
	if !slices.Contains(known, num) {
		http.Error(w, fmt.Sprintf("num_idk %q: no ИДК by that number has reported its state", num), http.StatusNotFound)
		return nil, false
	}
	return []string{num}, true
}
