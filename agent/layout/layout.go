// Package layout describes what a scanner's image-analysis program leaves in
// its output folder, independent of any one vendor. The agent asks a Layout
// which files belong to which scan and reads registration forms through it;
// a real vendor layout can be added beside the CargoRIW one (package
// layout/cargoriw) without touching the rest of the agent.
package layout

import (
	"errors"
	"time"
)

// Kind says what a file in a scan folder is.
type Kind int

const (
	KindUnknown  Kind = iota // not part of a scan: ignored, but logged once
	KindRaw                  // an X-ray image in the scanner's native (RAW) format
	KindDocument             // a scanned document (JPEG, PDF)
	KindForm                 // the operator's registration form, rewritten in place
)

func (k Kind) String() string {
	switch k {
	case KindRaw:
		return "raw"
	case KindDocument:
		return "document"
	case KindForm:
		return "form"
	}
	return "unknown"
}

// File is one file of a scan, as the layout classifies it.
type File struct {
	NumSnim string // scan number (NUM_SNIM) the file belongs to
	Name    string // base name inside the scan folder
	Kind    Kind
}

// Layout maps paths under the output folder to scans and parses forms.
type Layout interface {
	// Classify takes a path relative to the output folder, with '/' as the
	// separator, and says which scan and kind it is. ok is false for paths
	// that are not scan files (the folder itself, temp files, stray files).
	Classify(rel string) (f File, ok bool)
	// ParseForm decodes a registration form. name is used in errors, which
	// must name the file and the field that is wrong.
	ParseForm(name string, data []byte) (*Form, error)
}

// ErrIncomplete marks a form that ends early: most likely the program is
// still writing it. Parsers wrap it so the agent can retry quietly instead
// of reporting a malformed form.
var ErrIncomplete = errors.New("form is incomplete")

// Decision is the operator's decision recorded in the form (item 22в).
type Decision int

const (
	DecisionNone         Decision = iota // not decided yet
	DecisionNotSuspected                 // «Объект без подозрения» (or «без подозрений»)
	DecisionSuspected                    // «Объект под подозрением»
)

// Direction is the tick on a container tab: Импорт, Экспорт or Транзит.
type Direction int

const (
	DirectionNone Direction = iota
	DirectionImport
	DirectionExport
	DirectionTransit
)

// Form is the CargoRIW registration form (Appendix 3 of the instruction),
// field by field. Text is kept as written; the reports upper-case it.
type Form struct {
	NumSnim string    // scan number; must match the folder
	Created time.Time // when the program created the form (scan time)
	Saved   time.Time // when the program last saved it; zero if never

	// Tab «Машина».
	TruckID        string    // «ID грузовика», filled by the system
	TrailerID      string    // «Ид. номер прицепа»
	Country        string    // «Страна»
	CustomsInfo1   string    // «Доп Там Инфо1»: ГТД / МДП / transit / waybill numbers separated by '/'
	CustomsInfo2   string    // «Доп Там Инфо2»: carrier, sender or recipient
	CustomsInfo3   string    // «Доп Там Инфо3»: commercial document number
	InspectionDate time.Time // «Дата досмотра», filled by the system
	// VidTS is «Вид ТС», the vehicle category (VID_TS code 1-6), 0 when
	// not filled: a site convention, not in the regulation's form.
	VidTS int

	// Tabs «Контейнер 1» and «Контейнер 2»; the second may be empty.
	Containers [2]Container

	// Tab «Комментарии».
	CommentUpper string // name of the goods
	CommentLower string // what caused suspicion and what was done to check it

	Decision        Decision
	SuspicionReason string // «Причина подозрения», required when suspected
	Marks           int    // number of «Пометка» marks on the image
	Operator        string // operator's login as the program records it
}

// Container is one «Контейнер N» tab.
type Container struct {
	Number    string // «N контейнера»
	From      string // «Из»
	To        string // «В»
	Cargo     string // «Груз»: goods code
	Direction Direction
}

// Empty reports whether nothing was filled on the tab.
func (c Container) Empty() bool { return c == Container{} }
