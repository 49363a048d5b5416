package scanner

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"idk/agent/layout"
)

// plan decides the whole scan from r, always drawing in the same order so
// that a seed gives the same scan.
func (w *ScanWriter) plan(r *rand.Rand, now time.Time) {
	cfg := w.s.cfg
	for range cfg.RawPerScan {
		p := rawPlan{size: cfg.RawMin + r.Int64N(cfg.RawMax-cfg.RawMin+1)}
		for i := range p.seed {
			p.seed[i] = byte(r.Uint32())
		}
		w.raws = append(w.raws, p)
	}
	for i := 1; i <= cfg.DocsPerScan; i++ {
		d := docPlan{pdf: r.IntN(4) == 0, seed: r.Uint64()}
		d.name = fmt.Sprintf("doc_%03d.jpg", i)
		if d.pdf {
			d.name = fmt.Sprintf("doc_%03d.pdf", i)
		}
		w.docs = append(w.docs, d)
	}

	// The program records whole seconds.
	created := now.Truncate(time.Second)
	f := &w.final
	f.NumSnim = w.num
	f.Created = created
	// A3 §2: «ID грузовика» is the registration number of the scanned
	// image, filled by the system.
	f.TruckID = w.num
	f.InspectionDate = created
	f.Operator = fmt.Sprintf("idk_oper%02d", 1+r.IntN(6))

	home := r.IntN(3) != 0 // most traffic is on Russian plates
	if home {
		f.Country = "РОССИЯ"
		f.TrailerID = russianPlate(r) + "/" + russianTrailerPlate(r)
	} else {
		f.Country = pick(r, foreignCountries)
		f.TrailerID = latinPlate(r) + "/" + latinPlate(r)
	}

	dir := layout.Direction(1 + r.IntN(3))
	from, to := "РОССИЯ", "РОССИЯ"
	switch dir {
	case layout.DirectionImport:
		from = pick(r, foreignCountries)
	case layout.DirectionExport:
		to = pick(r, foreignCountries)
	case layout.DirectionTransit:
		from, to = pick(r, foreignCountries), pick(r, foreignCountries)
	}
	g := pick(r, goods)
	c1 := layout.Container{From: from, To: to, Cargo: g.code, Direction: dir}
	// «Вид ТС» (VID_TS, our site's field): a container on the vehicle
	// makes it Контейнерный (2), goods in its own body Грузовой (1). It
	// follows from what was drawn, so the seed's other fields stay as
	// they were before the field existed.
	f.VidTS = 1
	if r.IntN(2) == 0 {
		c1.Number = containerNumber(r)
		f.VidTS = 2
	} else {
		// A3 §3: goods not in a container are identified by the plate of
		// the vehicle that carries them.
		c1.Number = f.TrailerID[strings.IndexByte(f.TrailerID, '/')+1:]
	}
	f.Containers[0] = c1
	if r.IntN(10) < 3 { // two units in one combination, A3 §4
		g2 := pick(r, goods)
		f.Containers[1] = layout.Container{Number: containerNumber(r), From: from, To: to, Cargo: g2.code, Direction: dir}
	}

	f.CustomsInfo1 = fmt.Sprintf("%s/%s/%07d", pick(r, customsPosts), created.Format("020106"), 1+r.IntN(9999999))
	if r.IntN(2) == 0 {
		f.CustomsInfo1 += fmt.Sprintf("/XZ%08d", r.IntN(100000000)) // TIR carnet
	}
	f.CustomsInfo2 = pick(r, firms)
	f.CustomsInfo3 = fmt.Sprintf(pick(r, invoices), 1+r.IntN(99999), created.Format("02.01.2006"))
	f.CommentUpper = g.name

	if r.Float64() < cfg.SuspectRatio {
		f.Decision = layout.DecisionSuspected
		f.SuspicionReason = pick(r, reasons)
		f.CommentLower = pick(r, suspectComments)
		f.Marks = 1 + r.IntN(4)
	} else {
		f.Decision = layout.DecisionNotSuspected
		f.CommentLower = "ПРОВЕДЕН ВНЕШНИЙ ОСМОТР ТС, ПЛОМБЫ И ТЕНТ БЕЗ ПОВРЕЖДЕНИЙ, ДОКУМЕНТЫ ПРОВЕРЕНЫ"
		// Item 23а: marks are made whatever the decision.
		if r.IntN(5) == 0 {
			f.Marks = 1
			f.CommentLower = "ВЫДЕЛЕНЫ ПЛОТНЫЕ ОДНОРОДНЫЕ УПАКОВКИ В ХВОСТОВОЙ ЧАСТИ; ПРИ ВНЕШНЕМ ОСМОТРЕ И ОПРОСЕ ВОДИТЕЛЯ НАРУШЕНИЙ НЕ УСТАНОВЛЕНО"
		}
	}
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// Letters of Russian plates: those that look alike in Cyrillic and Latin.
var plateLetters = []rune("АВЕКМНОРСТУХ")

var regions = []int{77, 777, 50, 150, 23, 78, 199, 39, 61, 16}

// russianPlate is a car plate such as А654АА777, in Cyrillic.
func russianPlate(r *rand.Rand) string {
	l := func() rune { return pick(r, plateLetters) }
	return fmt.Sprintf("%c%03d%c%c%d", l(), 1+r.IntN(999), l(), l(), pick(r, regions))
}

// russianTrailerPlate is a trailer plate such as АВ123477.
func russianTrailerPlate(r *rand.Rand) string {
	l := func() rune { return pick(r, plateLetters) }
	return fmt.Sprintf("%c%c%04d%d", l(), l(), r.IntN(10000), pick(r, regions))
}

// latinPlate is a foreign plate such as RD5689.
func latinPlate(r *rand.Rand) string {
	const letters = "ABCDEHKLMNPRSTXZ"
	return fmt.Sprintf("%c%c%04d", letters[r.IntN(len(letters))], letters[r.IntN(len(letters))], r.IntN(10000))
}

// containerNumber is an ISO 6346 number such as MSKU1234565, check digit
// included, so that it looks right to anyone who checks.
func containerNumber(r *rand.Rand) string {
	s := pick(r, containerOwners) + fmt.Sprintf("%06d", r.IntN(1000000))
	return s + string(rune('0'+iso6346Check(s)))
}

// iso6346Check is the check digit of a 10-character owner code, category
// and serial number.
func iso6346Check(s string) int {
	sum, weight := 0, 1
	for i := 0; i < len(s); i++ {
		c := s[i]
		v := int(c - '0')
		if c >= 'A' && c <= 'Z' {
			// Letters count from A=10 up, skipping multiples of 11.
			v = 10
			for l := byte('A'); l < c; l++ {
				if v++; v%11 == 0 {
					v++
				}
			}
		}
		sum += v * weight
		weight *= 2
	}
	return sum % 11 % 10
}

var containerOwners = []string{"MSKU", "TGHU", "CMAU", "TCNU", "FSCU", "SEGU"}

var foreignCountries = []string{"КИТАЙ", "КАЗАХСТАН", "БЕЛАРУСЬ", "УЗБЕКИСТАН", "КИРГИЗИЯ", "ГЕРМАНИЯ", "ПОЛЬША", "ЛИТВА", "ТУРЦИЯ", "ЯПОНИЯ"}

// Customs post codes for ДТ numbers (code/DDMMYY/number).
var customsPosts = []string{"10702070", "10216100", "10009100", "10130090", "10612050"}

// Fictitious firms for «Доп Там Инфо2».
var firms = []string{
	"ООО «ВОСТОК-ТРАНЗИТ»",
	"ООО «СЕВЕРНЫЙ ТРАКТ»",
	"ТОО «СТЕПНОЙ ЭКСПРЕСС»",
	"ЗАО «БАЛТИЙСКАЯ ЛОГИСТИКА»",
	"ООО «ТОРГОВЫЙ ДОМ УРАЛ»",
	"HUAYU TRADING CO., LTD",
}

// Commercial documents for «Доп Там Инфо3»: number, date.
var invoices = []string{
	"СЧЕТ-ФАКТУРА № %06d ОТ %s",
	"ИНВОЙС № %d ОТ %s",
	"INVOICE NO. %d DD %s",
}

type goodsItem struct{ code, name string }

// Goods codes (ТН ВЭД, 10 digits) and names for «Груз» and «Комментарии».
var goods = []goodsItem{
	{"8708299009", "ЗАПАСНЫЕ ЧАСТИ ДЛЯ АВТОМОБИЛЕЙ"},
	{"6110209100", "ОДЕЖДА ТРИКОТАЖНАЯ"},
	{"0808108000", "ЯБЛОКИ СВЕЖИЕ"},
	{"6907219000", "ПЛИТКА КЕРАМИЧЕСКАЯ"},
	{"8528721000", "ТЕЛЕВИЗОРЫ"},
	{"4011100003", "ШИНЫ ПНЕВМАТИЧЕСКИЕ ДЛЯ ЛЕГКОВЫХ АВТОМОБИЛЕЙ"},
	{"9403608009", "МЕБЕЛЬ ДЕРЕВЯННАЯ"},
	{"7214200000", "ПРУТКИ ИЗ ЖЕЛЕЗА"},
}

// «Причина подозрения»: the program's list is not public (reference §11
// item 4), these are plausible categories.
var reasons = []string{
	"НЕСООТВЕТСТВИЕ ЗАЯВЛЕННОМУ ТОВАРУ",
	"НЕЗАДЕКЛАРИРОВАННЫЙ ТОВАР",
	"СОКРЫТИЕ В КОНСТРУКТИВНЫХ ПОЛОСТЯХ ТС",
	"НЕСООТВЕТСТВИЕ КОЛИЧЕСТВА ГРУЗОВЫХ МЕСТ",
}

var suspectComments = []string{
	"В ПЕРЕДНЕЙ ЧАСТИ ПОЛУПРИЦЕПА ВЫЯВЛЕНЫ ПЛОТНЫЕ ВЛОЖЕНИЯ, НЕ СООТВЕТСТВУЮЩИЕ ЗАЯВЛЕННОМУ ТОВАРУ; ПРОВЕДЕН ВНЕШНИЙ ОСМОТР ТС, ПОЛУЧЕНЫ ПИСЬМЕННЫЕ ОБЪЯСНЕНИЯ ВОДИТЕЛЯ",
	"ВЫЯВЛЕНА ПОЛОСТЬ В ДВОЙНОМ ПОЛУ ПОЛУПРИЦЕПА; ПРОВЕДЕН УСТНЫЙ ОПРОС ВОДИТЕЛЯ, ПРОВЕРЕНЫ ДОКУМЕНТЫ",
	"КОЛИЧЕСТВО ГРУЗОВЫХ МЕСТ НА СНИМКЕ БОЛЬШЕ ЗАЯВЛЕННОГО; ПРОВЕРЕНЫ ТОВАРОСОПРОВОДИТЕЛЬНЫЕ ДОКУМЕНТЫ",
}
