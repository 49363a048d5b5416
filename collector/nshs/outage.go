package nshs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"idk/collector/ingest"
	"idk/internal/atomicfile"
	"idk/internal/clock"
)

// The collector's own outages. A collector that stops without its stop
// being planned (a crash, a power cut, a SIGKILL, a fatal error) stops
// the information exchange of every post it serves: an НШС of source
// collector, from the last moment it is known to have been up to its
// restart. Neither end can be asked afterwards, so the collector keeps a
// heartbeat: a small file beside its index, rewritten every HeartbeatEvery
// with the current time, and marked clean when it is told to stop. At the
// next start RecordOutage reads it, before the heartbeat starts again.
//
// The НШС is recorded once per customs body served (the offices of the
// enrolled ИДК): the form is made per customs body (column 1, and the
// day's and week's forms of one body), and each of them lost its exchange
// with the collector. Their IDs are "collector-<KOD_TO>-<start, Unix
// seconds>", so a second start after the same stop (a crash during start
// up, before the heartbeat was rewritten) replaces them instead of
// doubling them. With no office known, one НШС without a customs body is
// recorded ("collector-<start>").

// HeartbeatEvery is how often the heartbeat is written: the start of the
// collector's outage is known to within it.
const HeartbeatEvery = 10 * time.Second

// HeartbeatFileName is the heartbeat's file in the store's root, beside
// the index (index.db).
const HeartbeatFileName = "nshs.heartbeat"

// HeartbeatPath is the heartbeat file of the store rooted at root.
func HeartbeatPath(root string) string { return filepath.Join(root, HeartbeatFileName) }

// Beat is what the heartbeat file holds.
type Beat struct {
	Time time.Time `json:"time"` // the last moment the collector was known to be up
	// Clean: the collector was told to stop, and did. A stop that is not
	// clean is an НШС.
	Clean bool `json:"clean,omitempty"`
}

// ReadHeartbeat reads the heartbeat file; ok is false when there is none
// (the collector's first start).
func ReadHeartbeat(path string) (b Beat, ok bool, err error) {
	v, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Beat{}, false, nil
	}
	if err != nil {
		return Beat{}, false, fmt.Errorf("nshs: heartbeat: %w", err)
	}
	if err := json.Unmarshal(v, &b); err != nil || b.Time.IsZero() {
		return Beat{}, false, fmt.Errorf("nshs: heartbeat %s: unreadable: %q", path, v)
	}
	return b, true, nil
}

func writeHeartbeat(path string, b Beat) error {
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, v, 0o640); err != nil {
		return fmt.Errorf("nshs: heartbeat: %w", err)
	}
	return nil
}

// Heartbeat writes the current time to its file every HeartbeatEvery
// until stopped.
type Heartbeat struct {
	path   string
	clk    clock.Clock
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// StartHeartbeat writes the first beat at once, then one every
// HeartbeatEvery on clk (clock.Real if nil). Call it after RecordOutage,
// which reads the beats of the run before. A beat that cannot be written
// is logged and the next one tried.
func StartHeartbeat(path string, clk clock.Clock, log *slog.Logger) (*Heartbeat, error) {
	clk = clock.Or(clk)
	if log == nil {
		log = slog.Default()
	}
	if err := writeHeartbeat(path, Beat{Time: clk.Now()}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Heartbeat{path: path, clk: clk, cancel: cancel, done: make(chan struct{})}
	// The ticker starts here, not in the goroutine: the beats count from
	// the first one, however late the goroutine runs.
	t := clk.NewTicker(HeartbeatEvery)
	go func() {
		defer close(h.done)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			}
			if ctx.Err() != nil {
				return
			}
			if err := writeHeartbeat(path, Beat{Time: clk.Now()}); err != nil {
				log.Error("cannot write the heartbeat; an outage of the collector would be dated from the last one written", "err", err)
			}
		}
	}()
	return h, nil
}

// Stop ends the beats and writes the last one, marked clean if the
// collector stops because it was told to. Only the first call does
// anything.
func (h *Heartbeat) Stop(clean bool) error {
	err := error(nil)
	h.once.Do(func() {
		h.cancel()
		<-h.done
		err = writeHeartbeat(h.path, Beat{Time: h.clk.Now(), Clean: clean})
	})
	return err
}

// CollectorSystems is column 2's start for an НШС of the collector.
const CollectorSystems = "коллектор РТУ"

// RecordOutage records, at the collector's start, the outage its last stop
// caused, if that stop was not clean: the heartbeat file does not say
// clean, or uncleanStop says so (the index had to be recovered, say). The
// НШС runs from the last heartbeat to now, is confirmed (the collector is
// up and serving again), and is recorded for each customs body in kodTOs
// (see above) in one transaction of db. It records nothing on a first
// start (no heartbeat file) and returns the НШС it recorded.
//
// Call it before StartHeartbeat. db is the index the book lives in (the
// book's Put takes a transaction of it).
func RecordOutage(db DB, book Putter, heartbeatFile string, uncleanStop bool, now time.Time, kodTOs []string) ([]NSHS, error) {
	beat, ok, err := ReadHeartbeat(heartbeatFile)
	if err != nil || !ok {
		return nil, err
	}
	if beat.Clean && !uncleanStop {
		return nil, nil
	}
	if !beat.Time.Before(now) {
		return nil, nil // the clock went back: nothing can be dated
	}
	ns := CollectorOutages(beat.Time, now, kodTOs)
	err = db.Update(func(tx ingest.Tx) error {
		for _, n := range ns {
			if err := book.Put(tx, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nshs: record the collector's outage from %s: %w", beat.Time.Format(time.RFC3339), err)
	}
	return ns, nil
}

// CollectorOutages are the НШС of a collector down from start to end,
// one per customs body in kodTOs, or one without a customs body.
func CollectorOutages(start, end time.Time, kodTOs []string) []NSHS {
	offices := slices.Compact(slices.Sorted(slices.Values(kodTOs)))
	offices = slices.DeleteFunc(offices, func(s string) bool { return s == "" })
	if len(offices) == 0 {
		offices = []string{""}
	}
	var out []NSHS
	for _, kod := range offices {
		id := fmt.Sprintf("collector-%d", start.Unix())
		if kod != "" {
			id = fmt.Sprintf("collector-%s-%d", kod, start.Unix())
		}
		out = append(out, NSHS{
			ID:          id,
			Source:      SourceCollector,
			KodTO:       kod,
			Systems:     CollectorSystems,
			Description: "остановка коллектора без штатного завершения работы (сбой, отключение питания); обмен данными ИДК поста с коллектором прерван",
			Category:    CollectorRule.Classify(start, end),
			Cause:       CollectorRule.Cause,
			Start:       start,
			End:         end,
			Confirmed:   true,
		})
	}
	return out
}
