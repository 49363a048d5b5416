package cases

import (
	"fmt"

	"idk/protocol/codes"
)

// ScanKind is the kind of a scan, the VER_SCAN code of table 1.
type ScanKind int

// The VER_SCAN codes (table 1, field 9; names in codes.VerScan).
const (
	ScanObject    ScanKind = 1 // «Сканирование объекта контроля»: СКАНИРОВАНИЕ
	ScanRadiation ScanKind = 2 // «Радиационный контроль ИДК»: РК
	ScanRepeat    ScanKind = 3 // «Повторное сканирование»: ПОВТОР
	ScanFailure   ScanKind = 4 // «При проведении сканирования произошел сбой»: СБОЙ
	ScanTest      ScanKind = 5 // «Тестовое сканирование сервисной организацией»: ТЕСТ
)

// valid reports whether k is 0 (not said) or a VER_SCAN code.
func (k ScanKind) valid() bool { return k == 0 || codes.VerScan.Valid(int(k)) }

// Inspects reports whether a scan of kind k is the customs control of an
// object, which item 35 times. Radiation control and test scans inspect
// no object, and a repeat scan is of an object whose inspection was
// already timed, so they carry no TIME_2 and no TIME_3 clock. A failed
// scan (СБОЙ) is still the inspection of its object, and an unsaid kind
// is taken to be one.
func (k ScanKind) Inspects() bool {
	return k != ScanRadiation && k != ScanRepeat && k != ScanTest
}

// String is the short name table 1 gives k ("РК"), "unsaid" for 0.
func (k ScanKind) String() string {
	if k == 0 {
		return "unsaid"
	}
	if n := codes.VerScan.Short(int(k)); n != "" {
		return n
	}
	return fmt.Sprintf("VER_SCAN %d", int(k))
}

// scanKind is the case's kind of scan: the last kind its events gave, so
// that staff can correct a kind they declared.
func (r *record) scanKind() ScanKind {
	var k ScanKind
	for _, ev := range r.Events {
		if ev.VerScan != 0 {
			k = ev.VerScan
		}
	}
	return k
}
