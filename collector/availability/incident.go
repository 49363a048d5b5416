package availability

import (
	"encoding/json"
	"errors"
	"time"

	"idk/protocol/codes"
	"idk/protocol/idkpb"
)

// Category is the category of every incident this package reports: the
// ИДК could not be used (TIME_NEPAB).
const Category = "неработоспособность ИДК"

// ErrUnknownIncident is returned (wrapped) by Ack and Report for an incident the
// tracker does not know.
var ErrUnknownIncident = errors.New("unknown incident")

// CauseName is the Russian name of an inoperability cause from the
// TIME_NEPAB list (protocol/codes, whose codes the InoperableCause enum
// keeps). No cause given is "причина не указана"; a code this program does
// not know is the list's own catch-all, «иная неисправность…».
func CauseName(c idkpb.InoperableCause) string {
	if c == idkpb.InoperableCause_INOPERABLE_CAUSE_UNSPECIFIED {
		return "причина не указана"
	}
	if n := codes.TimeNepab.Name(int(c)); n != "" {
		return n
	}
	return codes.TimeNepab.Name(int(idkpb.InoperableCause_INOPERABLE_CAUSE_OTHER))
}

// Incident is one interval in which the ИДК was inoperable, recorded the
// way the ICT incident rules record an incident: start, end, duration,
// cause and category, plus who acknowledged it and which reporting steps
// were done.
type Incident struct {
	ID        string    // NUM_IDK and start time; stable across restarts
	NumIDK    string    // NUM_IDK
	KodTO     string    // KOD_M_D of the site it happened at
	NaimZTK   string    // NAIM_ZTK_M_D of the site it happened at
	Start     time.Time // when the ИДК became inoperable
	End       time.Time // when it stopped being inoperable; zero while open
	Duration  time.Duration
	Cause     idkpb.InoperableCause // the latest cause given
	CauseName string                // Russian name of Cause
	Category  string                // always Category
	Note      string                // the latest note staff gave
	Acked     bool
	AckedBy   string
	AckedAt   time.Time
	// Reports are the reporting steps done (ReportSteps), by step name.
	Reports map[string]StepReport
}

// Open reports whether the ИДК is still inoperable.
func (i Incident) Open() bool { return i.End.IsZero() }

// MarshalJSON writes the incident for the HTTP API: times as RFC 3339,
// null when not set, and the duration both in seconds and as "H,MM" like
// the report writes it.
func (i Incident) MarshalJSON() ([]byte, error) {
	type out struct {
		ID              string     `json:"id"`
		NumIDK          string     `json:"num_idk"`
		KodTO           string     `json:"kod_to"`
		NaimZTK         string     `json:"naim_ztk"`
		Start           time.Time  `json:"start"`
		End             *time.Time `json:"end"`
		Open            bool       `json:"open"`
		DurationSeconds int64      `json:"duration_seconds"`
		Duration        string     `json:"duration"`
		Cause           int32      `json:"cause"`
		CauseName       string     `json:"cause_name"`
		Category        string     `json:"category"`
		Note            string     `json:"note,omitempty"`
		Acked           bool       `json:"acked"`
		AckedBy         string     `json:"acked_by,omitempty"`
		AckedAt         *time.Time `json:"acked_at"`
		Steps           any        `json:"steps"`
	}
	return json.Marshal(out{
		ID:              i.ID,
		NumIDK:          i.NumIDK,
		KodTO:           i.KodTO,
		NaimZTK:         i.NaimZTK,
		Start:           i.Start,
		End:             timePtr(i.End),
		Open:            i.Open(),
		DurationSeconds: int64(i.Duration.Round(time.Second) / time.Second),
		Duration:        FormatHM(i.Duration),
		Cause:           int32(i.Cause),
		CauseName:       i.CauseName,
		Category:        i.Category,
		Note:            i.Note,
		Acked:           i.Acked,
		AckedBy:         i.AckedBy,
		AckedAt:         timePtr(i.AckedAt),
		Steps:           stepsJSON(i),
	})
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// incidentID names an incident by its ИДК and start, so that the same
// incident recomputed after a restart keeps its ID and its ack.
func incidentID(numIDK string, start time.Time) string {
	return numIDK + "-" + start.UTC().Format("20060102T150405.999999999Z")
}

// Ack records that someone acknowledged an incident.
type Ack struct {
	NumIDK string    `json:"num_idk"`
	ID     string    `json:"id"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// AckStore keeps acks and reporting steps across collector restarts.
// SaveAck and SaveStep must be durable when they return: the ack or step
// is only shown after it.
type AckStore interface {
	SaveAck(numIDK, id, by string, at time.Time) error
	LoadAcks() ([]Ack, error)
	SaveStep(numIDK, id, step, by string, at time.Time) error
	LoadSteps() ([]StepReport, error)
}

// incidents finds the inoperable intervals of a timeline. Consecutive
// INOPERABLE changes are one incident: a change that only refines the
// cause (the ICT rules have causes detailed while the fault is being
// fixed) must not open a second incident or move the start.
func incidents(numIDK string, spans []span, loc *time.Location, now time.Time) []Incident {
	var out []Incident
	for i := 0; i < len(spans); i++ {
		sp := spans[i]
		if sp.state != idkpb.DeviceState_DEVICE_STATE_INOPERABLE {
			continue
		}
		inc := Incident{
			ID:       incidentID(numIDK, sp.start),
			NumIDK:   numIDK,
			KodTO:    sp.site.kodTO,
			NaimZTK:  sp.site.naimZTK,
			Start:    sp.start.In(loc),
			Category: Category,
		}
		j := i
		for ; j < len(spans) && spans[j].state == idkpb.DeviceState_DEVICE_STATE_INOPERABLE; j++ {
			if spans[j].cause != idkpb.InoperableCause_INOPERABLE_CAUSE_UNSPECIFIED {
				inc.Cause = spans[j].cause
			}
			if spans[j].note != "" {
				inc.Note = spans[j].note
			}
		}
		// The timeline's last interval is the only open one; any other
		// ends where the next change begins.
		if j < len(spans) {
			inc.End = spans[j].start.In(loc)
			inc.Duration = inc.End.Sub(inc.Start)
		} else {
			inc.Duration = now.Sub(inc.Start)
		}
		inc.CauseName = CauseName(inc.Cause)
		out = append(out, inc)
		i = j - 1
	}
	return out
}
