package nshs

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"idk/collector/report"
	"idk/internal/clock"
	"idk/internal/httpjson"
	"idk/protocol"
)

// FormHandler serves the appendix 4 form. The collector puts it behind
// its API token, mounted at /api/v1/nshs/form.
//
//	GET /api/v1/nshs/form?id=ID[&format=xlsx|html]
//	    the form of one category I НШС (404 for an unknown ID, 422 for an
//	    НШС of another category)
//	GET /api/v1/nshs/form?day=2026-11-27[&kod_to=K][&format=xlsx|html]
//	    the form of the duty shift's day of that date (5.17): from
//	    ShiftStart on that date to ShiftStart on the next
//	GET /api/v1/nshs/form?week=2026-11-25[&kod_to=K][&format=xlsx|html]
//	    the weekly summary (2.1.4) of the week, Monday to Sunday, that
//	    holds that date: the week's category I НШС and a summary sheet
//
// day and week may also be written 27.11.2026; without kod_to the form
// has every customs body's НШС. The .xlsx is the default. The document is
// written to a temporary file first, so that a failure half-way is an
// error answer, not a truncated file sent as a success.
type FormHandler struct {
	Book     Lister
	Location *time.Location // the calendar of days and weeks; UTC if nil
	Clock    clock.Clock    // the build time, to which open НШС are measured; clock.Real if nil
	// ShiftStart is when the duty shift's day begins after midnight; 0 is
	// DefaultShiftStart, 08:00.
	ShiftStart time.Duration

	// mux is built on the first request: its pattern is parsed once.
	once sync.Once
	mux  *http.ServeMux
}

func (h *FormHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(func() {
		h.mux = http.NewServeMux()
		h.mux.HandleFunc("GET /api/v1/nshs/form", h.serveForm)
	})
	h.mux.ServeHTTP(w, r)
}

func (h *FormHandler) loc() *time.Location {
	if h.Location == nil {
		return time.UTC
	}
	return h.Location
}

func (h *FormHandler) serveForm(w http.ResponseWriter, r *http.Request) {
	q, ok := httpjson.Query(w, r, "id", "day", "week", "kod_to", "format")
	if !ok {
		return
	}
	var given []string
	for _, p := range []string{"id", "day", "week"} {
		if q.Has(p) {
			given = append(given, p)
		}
	}
	switch len(given) {
	case 0:
		http.Error(w, "one of id, day or week is required", http.StatusBadRequest)
		return
	case 1:
	default:
		http.Error(w, fmt.Sprintf("%s: give only one of id, day or week", strings.Join(given, " and ")), http.StatusBadRequest)
		return
	}
	format := q.Get("format")
	if format == "" {
		format = "xlsx"
	}
	if !slices.Contains([]string{"xlsx", "html"}, format) {
		http.Error(w, fmt.Sprintf("format %q: want xlsx or html", format), http.StatusBadRequest)
		return
	}
	kod := q.Get("kod_to")
	if q.Has("kod_to") {
		if err := protocol.CheckKodTO(kod); err != nil {
			http.Error(w, fmt.Sprintf("kod_to: %v", err), http.StatusBadRequest)
			return
		}
	}
	shift := h.ShiftStart
	if shift == 0 {
		shift = DefaultShiftStart
	}
	now := clock.Or(h.Clock).Now()
	var (
		d    *Document
		err  error
		name string
	)
	switch given[0] {
	case "id":
		id := strings.TrimSpace(q.Get("id"))
		if id == "" {
			http.Error(w, "id is empty: want an НШС's ID", http.StatusBadRequest)
			return
		}
		d, err = FormOne(h.Book, id, h.loc(), now)
		switch {
		case errors.Is(err, ErrFormNotFound):
			http.Error(w, fmt.Sprintf("id %s: %v", id, err), http.StatusNotFound)
			return
		case errors.Is(err, ErrNotCategoryI):
			http.Error(w, fmt.Sprintf("id %s: %v", id, err), http.StatusUnprocessableEntity)
			return
		case err == nil && kod != "" && d.KodTO != kod:
			http.Error(w, fmt.Sprintf("id %s: the НШС is of customs body %s, not kod_to %s", id, d.KodTO, kod), http.StatusNotFound)
			return
		}
		name = "nshs-form-" + formFileSafe(id)
	case "day", "week":
		p := given[0]
		day, perr := formParseDay(p, q.Get(p), h.loc())
		if perr != nil {
			http.Error(w, perr.Error(), http.StatusBadRequest)
			return
		}
		if p == "day" {
			d, err = DayForm(h.Book, day, shift, h.loc(), now, kod)
		} else {
			d, err = WeekForm(h.Book, day, h.loc(), now, kod)
		}
		if err == nil {
			name = fmt.Sprintf("nshs-form-%s-%s", p, d.From.In(h.loc()).Format("2006-01-02"))
			if kod != "" {
				name += "-" + kod
			}
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	serveFormDocument(w, r, d, name, format)
}

// formParseDay reads the date of parameter param: 2026-11-27 or 27.11.2026,
// as midnight in loc.
func formParseDay(param, s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%s is empty: want 2026-11-27 or 27.11.2026", param)
	}
	for _, layout := range []string{"2006-01-02", "02.01.2006"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: want 2026-11-27 or 27.11.2026", param, s)
}

// formFileSafe keeps the letters, digits, '-' and '_' of s, for a file name.
func formFileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// serveFormDocument writes d in format to a temporary file, then sends it as
// name.format.
func serveFormDocument(w http.ResponseWriter, r *http.Request, d *Document, name, format string) {
	tmp, err := os.CreateTemp("", "idk-nshs-form-*."+format)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	ctype := report.XLSXType
	write := d.WriteXLSX
	if format == "html" {
		ctype = "text/html; charset=utf-8"
		write = d.WriteHTML
	}
	if err := write(tmp); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+"."+format))
	http.ServeContent(w, r, "", d.Built, tmp)
}
