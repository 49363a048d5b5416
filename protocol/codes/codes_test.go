package codes

import (
	"slices"
	"strings"
	"testing"
)

// TestTables checks each table's size and a few entries against the
// domain reference (§8), copied here by hand so the test needs no file
// outside the module.
func TestTables(t *testing.T) {
	type want struct {
		code        int
		name, short string
	}
	for _, tc := range []struct {
		t     Table
		n     int
		codes []int
		some  []want
	}{
		{TypeIDK, 2, []int{1, 2}, []want{{1, "Мобильный", ""}, {2, "Стационарный", ""}}},
		{Disl, 5, []int{1, 2, 3, 4, 5}, []want{{1, "Автомобильный пункт пропуска", "АПП"}, {3, "Железнодорожный пункт пропуска", "ЖДПП"}, {5, "Вне пункта пропуска", "ВНЕ ПП"}}},
		{KodTeh, 13, []int{1, 2, 3, 4, 5, 7, 9, 10, 11, 19, 20, 21, 99}, []want{{1, "Прибытие товаров на таможенную территорию Евразийского экономического союза", ""}, {21, "Перемещение товаров через границу особой экономической зоны", ""}, {99, "Любая", ""}}},
		{VidPr, 6, []int{11, 12, 13, 20, 21, 55}, []want{{11, "Общероссийский профиль риска", ""}, {21, "Целевой правоохранительный профиль риска", ""}, {55, "Профиль риска, обязательный к применению", ""}}},
		{Napr, 2, []int{1, 2}, []want{{1, "Ввоз", ""}, {2, "Вывоз", ""}}},
		{DocType, 10, nil, []want{{1, "Сообщение о прибытии", ""}, {3, "Отчет по форме ДО-1", ""}, {10, "Сообщение об убытии", ""}}},
		{VerScan, 5, nil, []want{{1, "Сканирование объекта контроля", "СКАНИРОВАНИЕ"}, {2, "Радиационный контроль ИДК", "РК"}, {5, "Тестовое сканирование сервисной организацией", "ТЕСТ"}}},
		{VidTS, 6, nil, []want{{1, "Грузовой", ""}, {2, "Контейнерный", ""}, {6, "Иной", ""}}},
		{Rez1, 2, []int{1, 2}, []want{{1, "Без подозрений", ""}, {2, "Под подозрением", ""}}},
		{Rez2, 8, nil, []want{{1, "Возбуждение дела об административном правонарушении", "АП"}, {5, "Принято решение об отказе в выпуске товаров", "О"}, {6, "", "КТС"}, {8, "", "Д"}}},
		{TimeNepab, 8, nil, []want{{1, "перезагрузка системы", ""}, {3, "поломка дизель-генератора", ""}, {7, "неисправность программного обеспечения", ""}}},
		{Rez6, 15, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, []want{{0, "Назначено проведение проверочных мероприятий", ""}, {8, "Издан профиль риска", ""}, {13, "Должностное лицо, допустившее нарушение, уволено", ""}}},
	} {
		t.Run(tc.t.Field, func(t *testing.T) {
			if len(tc.t.Entries) != tc.n {
				t.Errorf("%d codes, want %d", len(tc.t.Entries), tc.n)
			}
			if tc.codes != nil && !slices.Equal(tc.t.Codes(), tc.codes) {
				t.Errorf("codes %v, want %v", tc.t.Codes(), tc.codes)
			}
			for _, w := range tc.some {
				if !tc.t.Valid(w.code) {
					t.Errorf("%d not valid", w.code)
				}
				if w.name != "" && tc.t.Name(w.code) != w.name {
					t.Errorf("name of %d: %q, want %q", w.code, tc.t.Name(w.code), w.name)
				}
				if tc.t.Short(w.code) != w.short {
					t.Errorf("short name of %d: %q, want %q", w.code, tc.t.Short(w.code), w.short)
				}
			}
			seen := map[int]bool{}
			for _, e := range tc.t.Entries {
				if seen[e.Code] || e.Name == "" {
					t.Errorf("code %d: repeated or unnamed", e.Code)
				}
				seen[e.Code] = true
			}
			if tc.t.Valid(-1) || tc.t.Name(-1) != "" {
				t.Error("-1 is valid")
			}
		})
	}
	if len(All) != 12 {
		t.Errorf("All has %d tables, want 12", len(All))
	}
}

// TestText: KOD_TEH codes are written with two digits and only so.
func TestText(t *testing.T) {
	if got := strings.Join(KodTeh.Texts(), ","); got != "01,02,03,04,05,07,09,10,11,19,20,21,99" {
		t.Errorf("KOD_TEH texts %s", got)
	}
	for s, ok := range map[string]bool{"01": true, "99": true, "1": false, "06": false, " 01": false, "": false} {
		if KodTeh.ValidText(s) != ok {
			t.Errorf("KOD_TEH %q valid: %v, want %v", s, !ok, ok)
		}
	}
	if c, ok := VidPr.Parse("55"); !ok || c != 55 {
		t.Errorf("VID_PR 55: %d %v", c, ok)
	}
	if VidPr.ValidText("055") || Rez2.ValidText("0") || !Rez6.ValidText("0") {
		t.Error("VID_PR 055, table 2 REZ 0 or table 6 REZ 0")
	}
}
