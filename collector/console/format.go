package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"idk/collector/auth"
	"idk/collector/cases"
)

// stateInfo is how a table 3 state is shown everywhere: one class (and so
// one colour, static/console.css), its Russian name and the table 3 field
// that counts it.
type stateInfo struct {
	Name  string // WORKING, ... as availability.Row.Seconds keys them
	Class string // st-working, ...
	Title string // in Russian
	Field string // the table 3 field that counts it, "" for none
}

// states are the states in table 3's order, then the two no field counts.
var states = []stateInfo{
	// TIME_JOB counts both working and waiting (table 3 field 9).
	{"WORKING", "st-working", "Работа (осмотр объекта)", "в TIME_JOB"},
	{"WAITING", "st-waiting", "Ожидание объекта", "в TIME_JOB"},
	{"OPERATIONS", "st-operations", "Подготовительные и заключительные операции", "TIME_OPER"},
	{"MAINTENANCE", "st-maintenance", "Техническое обслуживание и ремонт", "TIME_TEH"},
	{"INOPERABLE", "st-inoperable", "Неработоспособен", "TIME_NEPAB"},
	{"RELOCATION", "st-relocation", "Передислокация", "TIME_PEREDISL"},
	{"IDLE", "st-idle", "Выключен, не используется", ""},
	{"UNKNOWN", "st-unknown", "Нет данных", ""},
}

func stateOf(name string) stateInfo {
	for _, s := range states {
		if s.Name == name {
			return s
		}
	}
	return states[len(states)-1]
}

// kindInfo is an inspection event the console reports, with the item of
// the Instruction it is.
type kindInfo struct {
	Kind  cases.Kind
	Item  string // 20в, ...
	Title string
}

// consoleKinds are the events a person reports from the inspections page:
// those that end the timers (item 35). The others come from the agents
// (arrival, scan, decision) or from documentary control (risk).
var consoleKinds = []kindInfo{
	{cases.DocsHanded, "20в", "Документы переданы в подразделение ИДК"},
	{cases.CarrierInformed, "20г", "Перевозчик проинформирован"},
	{cases.DocsReturned, "22д", "Документы с отметкой возвращены"},
	{cases.ActHanded, "24б", "Акт (экз. 1) передан"},
}

func consoleKind(k string) (kindInfo, bool) {
	for _, ki := range consoleKinds {
		if string(ki.Kind) == k {
			return ki, true
		}
	}
	return kindInfo{}, false
}

// kindTitles names every event kind in Russian, with its item.
var kindTitles = map[cases.Kind]string{
	cases.RiskDetected:    "п. 12 Выявлен риск",
	cases.DocsHanded:      "п. 20в Документы переданы",
	cases.CarrierInformed: "п. 20г Перевозчик проинформирован",
	cases.Arrival:         "п. 17 Прибытие в зону",
	cases.Scan:            "п. 21в Сканирование",
	cases.Decision:        "п. 22в Решение",
	cases.DocsReturned:    "п. 22д Документы возвращены",
	cases.ActHanded:       "п. 24б Акт передан",
	cases.RiskWithdrawn:   "Риск отменён",
}

// ruleTitles name the three limits of item 35.
var ruleTitles = map[cases.Rule]string{
	cases.Time1: "TIME_1 · оформление решения о применении ИДК, 15 мин",
	cases.Time2: "TIME_2 · таможенный осмотр с ИДК, 15 мин",
	cases.Time3: "TIME_3 · оформление признаков нарушения, 30 мин",
}

// funcs are the templates' helpers. Times are shown in the collector's
// location: dates DD.MM.YYYY, times HH:MM.
func (c *console) funcs() template.FuncMap {
	in := func(t time.Time) time.Time { return t.In(c.loc) }
	return template.FuncMap{
		"date": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return in(t).Format("02.01.2006")
		},
		"hm": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return in(t).Format("15:04")
		},
		"datetime": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return in(t).Format("02.01.2006 15:04")
		},
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"isodate":  func(t time.Time) string { return in(t).Format("2006-01-02") },
		"dur":      formatDuration,
		"hmdur":    formatHM,
		"bytes":    formatBytes,
		"state":    stateOf,
		"states":   func() []stateInfo { return states },
		"kind":     func(k cases.Kind) string { return orString(kindTitles[k], string(k)) },
		"rule":     func(r cases.Rule) string { return orString(ruleTitles[r], string(r)) },
		"ms":       func(d time.Duration) int64 { return d.Milliseconds() },
		"limit":    func(r cases.Rule) time.Duration { return r.Limit() },
		"join":     strings.Join,
		"upper":    strings.ToUpper,
		"add":      func(a, b int) int { return a + b },
		"consoleK": func() []kindInfo { return consoleKinds },
		// may lets a template ask what the person may do by the action's
		// name (a template cannot write an auth.Action).
		"may": func(p auth.Person, a string) bool { return p.May(auth.Action(a)) },
	}
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// formatDuration writes d for people: "2 ч 05 мин", "14 мин", "40 с".
func formatDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "−", -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%s%d с", sign, int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%s%d мин", sign, int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%s%d ч %02d мин", sign, int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%s%d сут %d ч", sign, int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// formatHM writes d the way table 3 does: hours, a comma, two digits of
// minutes ("13,50"), rounded to the minute.
func formatHM(d time.Duration) string {
	m := int64(d.Round(time.Minute) / time.Minute)
	return fmt.Sprintf("%d,%02d", m/60, m%60)
}

// formatBytes writes a size in binary units, in Russian.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d Б", n)
	}
	v, i := float64(n), 0
	names := []string{"КиБ", "МиБ", "ГиБ", "ТиБ"}
	for v /= unit; v >= unit && i < len(names)-1; v /= unit {
		i++
	}
	return strings.Replace(fmt.Sprintf("%.1f %s", v, names[i]), ".", ",", 1)
}
