// Package nshs keeps the ICT incidents of the ИДК system — НШС,
// нештатные ситуации — the way the regulation on technical support of ICT
// in customs bodies (FTS order N 1129 of 18.07.2018; the English reference
// is ../shared/domain/ict-incidents.md) wants them: each with the customs
// body it happened at, the systems affected, its category (appendix 2) and
// cause (4.1), its start and end, who was informed, and the works done;
// and it gives them as the appendix 4 form «Сведения о нештатных ситуациях
// I категории», for one НШС, for the duty shift's day (5.17) and as a
// weekly summary.
//
// Three sources open an НШС:
//   - an ИДК inoperable (collector/availability's incidents, from the
//     device states the agents report);
//   - the link from a post to the collector (the operator's channel, КПД)
//     down longer than a threshold, which the agent records and reports
//     with its real start when the link returns (idkpb.LinkOutage);
//   - the collector itself down: a restart after an unclean stop records
//     its own outage.
//
// An НШС is closed only once monitoring confirms normal operation (5.9,
// 5.11): for a link, the agent reconnected and drained its spool.
package nshs

import "time"

// Category is an НШС's category at the level of a customs post
// (appendix 2).
type Category int

const (
	CategoryI   Category = 1 // чрезвычайно критичная
	CategoryII  Category = 2 // критичная
	CategoryIII Category = 3 // не критичная
	CategoryIV  Category = 4 // локальная
	CategoryV   Category = 5 // внешняя
)

var categoryNames = map[Category][2]string{
	CategoryI:   {"I", "чрезвычайно критичная"},
	CategoryII:  {"II", "критичная"},
	CategoryIII: {"III", "не критичная"},
	CategoryIV:  {"IV", "локальная"},
	CategoryV:   {"V", "внешняя"},
}

// Valid reports whether c is one of the five categories.
func (c Category) Valid() bool { _, ok := categoryNames[c]; return ok }

// String is the category's Roman numeral, "I" to "V".
func (c Category) String() string { return categoryNames[c][0] }

// Name is the category's name in the regulation.
func (c Category) Name() string { return categoryNames[c][1] }

// Cause is an НШС's cause (4.1): external or internal, with its sub-item.
type Cause string

const (
	CauseExternalPower    Cause = "external.power"       // 4.1 а) отсутствие электропитания от поставщика
	CauseExternalChannel  Cause = "external.channel"     // 4.1 б) неисправность канала (линии) связи оператора связи
	CauseExternalOperator Cause = "external.operator"    // 4.1 в) сбой у оператора государственной информационной системы
	CauseExternalDisaster Cause = "external.disaster"    // 4.1 г) стихийное бедствие
	CauseInternalICT      Cause = "internal.ict"         // 4.1 а) неисправность (сбой) средств ИКТ таможенного органа
	CauseInternalEngineer Cause = "internal.engineering" // 4.1 б) инженерные системы, собственные линии связи
	CauseInternalUser     Cause = "internal.user"        // 4.1 в) ошибки пользователей или специалистов ИКТ
	CauseInternalAccident Cause = "internal.accident"    // 4.1 г) происшествия: пожар, коммунальные аварии
	CauseInternalPlanned  Cause = "internal.planned"     // 4.1 д) плановые работы
)

var causeNames = map[Cause]string{
	CauseExternalPower:    "внешняя: отсутствие электропитания от поставщика",
	CauseExternalChannel:  "внешняя: неисправность канала связи оператора связи",
	CauseExternalOperator: "внешняя: сбой у оператора государственной информационной системы",
	CauseExternalDisaster: "внешняя: стихийное бедствие",
	CauseInternalICT:      "внутренняя: неисправность (сбой) средств ИКТ",
	CauseInternalEngineer: "внутренняя: неисправность инженерных систем или собственных линий связи",
	CauseInternalUser:     "внутренняя: ошибка пользователя или специалиста ИКТ",
	CauseInternalAccident: "внутренняя: происшествие (пожар, коммунальная авария)",
	CauseInternalPlanned:  "внутренняя: плановые работы",
}

// Valid reports whether c is one of the causes of 4.1.
func (c Cause) Valid() bool { _, ok := causeNames[c]; return ok }

// External reports whether c is an external cause.
func (c Cause) External() bool { return len(c) > 9 && c[:9] == "external." }

// Name is the cause in Russian, as the form writes it.
func (c Cause) Name() string { return causeNames[c] }

// Source is what opened an НШС.
type Source string

const (
	SourceIDK       Source = "idk"       // an ИДК inoperable
	SourceLink      Source = "link"      // the link from a post to the collector
	SourceCollector Source = "collector" // the collector itself
)

// NSHS is one НШС.
type NSHS struct {
	ID     string `json:"id"`
	Source Source `json:"source"`
	KodTO  string `json:"kod_to"`            // the customs body where it happened
	NumIDK string `json:"num_idk,omitempty"` // the ИДК (idk and link sources)
	// Systems names the ICT means whose functioning was disrupted, as the
	// form's column 2 begins: "ИДК 850591", "канал связи поста с
	// коллектором", "коллектор РТУ".
	Systems     string    `json:"systems"`
	Description string    `json:"description"`
	Category    Category  `json:"category"`
	Cause       Cause     `json:"cause"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end,omitzero"` // zero while open
	// Confirmed: monitoring confirmed normal operation (5.9, 5.11). An
	// НШС with an End but not Confirmed is not closed.
	Confirmed bool     `json:"confirmed"`
	Informed  []string `json:"informed,omitempty"` // who was informed, as the form's column 2 ends
	Works     string   `json:"works,omitempty"`    // works done to restore normal operation
}

// Closed reports whether the НШС is over and confirmed.
func (n NSHS) Closed() bool { return !n.End.IsZero() && n.Confirmed }

// Duration is from Start to End, or to now while open.
func (n NSHS) Duration(now time.Time) time.Duration {
	if n.End.IsZero() {
		return now.Sub(n.Start)
	}
	return n.End.Sub(n.Start)
}
