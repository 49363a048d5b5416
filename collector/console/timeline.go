package console

import (
	"fmt"
	"time"

	"idk/collector/availability"
)

// The timeline's drawing: a day is timelineWidth units wide whatever its
// length (23 or 25 hours on a clock change), so that the SVG scales to
// the screen through its viewBox.
const (
	timelineWidth  = 1440.0 // one unit a minute on an ordinary day
	timelineBarY   = 22.0
	timelineBarH   = 44.0
	timelineHeight = 90.0
)

// segment is one rectangle of the timeline: one run of one state.
type segment struct {
	X, W  float64
	Class string
	Title string // the tooltip: state, from, to
}

// tick is an hour mark of the timeline.
type tick struct {
	X     float64
	Label string // "00" ... "24"; empty for a mark without a label
}

// timeline is the day's picture as the template draws it.
type timeline struct {
	Width, Height, BarY, BarH float64
	// ViewX and ViewW widen the view on both sides, so that the labels
	// "00" and "24" at the edges are not cut in half.
	ViewX, ViewW             float64
	LabelY, TickTop, TickEnd float64
	Segments                 []segment
	Ticks                    []tick
	// NowX is where now falls, when it is within the day (else -1): the
	// rest of the day is yet to come and drawn empty.
	NowX float64
}

// buildTimeline lays out runs over the day [from, to): one segment per
// run, clipped to the day, and a tick each hour. Runs must be in time
// order; adjacent runs of the same state should already be one run.
func buildTimeline(runs []availability.Run, from, to, now time.Time) timeline {
	tl := timeline{Width: timelineWidth, Height: timelineHeight, BarY: timelineBarY, BarH: timelineBarH, ViewX: -16, ViewW: timelineWidth + 32,
		LabelY: 14, TickTop: timelineBarY, TickEnd: timelineBarY + timelineBarH + 6, NowX: -1}
	span := to.Sub(from)
	if span <= 0 {
		return tl
	}
	x := func(t time.Time) float64 {
		switch {
		case t.Before(from):
			t = from
		case t.After(to):
			t = to
		}
		return timelineWidth * float64(t.Sub(from)) / float64(span)
	}
	for _, r := range runs {
		if !r.End.After(from) || !r.Start.Before(to) || !r.End.After(r.Start) {
			continue
		}
		s := stateOf(r.State)
		title := fmt.Sprintf("%s: %s–%s", s.Title, r.Start.In(from.Location()).Format("15:04"), r.End.In(from.Location()).Format("15:04"))
		if r.Note != "" {
			title += " (" + r.Note + ")"
		}
		tl.Segments = append(tl.Segments, segment{X: x(r.Start), W: x(r.End) - x(r.Start), Class: "seg " + s.Class, Title: title})
	}
	// Hour marks by the calendar, so that a clock change shows where it is.
	for h := 0; ; h++ {
		t := time.Date(from.Year(), from.Month(), from.Day(), h, 0, 0, 0, from.Location())
		if t.After(to) {
			break
		}
		label := ""
		if h%3 == 0 {
			label = fmt.Sprintf("%02d", h)
		}
		tl.Ticks = append(tl.Ticks, tick{X: x(t), Label: label})
	}
	if now.After(from) && now.Before(to) {
		tl.NowX = x(now)
	}
	return tl
}
