package intake

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"idk/agent/layout"
	"idk/agent/layout/cargoriw"
)

// TestGenerateCorpus rewrites testdata/forms from one good form. It runs
// only with IDK_GEN_CORPUS=1; the files are committed.
func TestGenerateCorpus(t *testing.T) {
	if os.Getenv("IDK_GEN_CORPUS") == "" {
		t.Skip("set IDK_GEN_CORPUS=1 to regenerate testdata/forms")
	}
	ts := time.Date(2026, 11, 20, 10, 15, 0, 0, time.FixedZone("MSK", 3*3600))
	f := &layout.Form{NumSnim: "202611208505910001", Created: ts, Saved: ts.Add(9 * time.Minute),
		TruckID: "202611208505910001", TrailerID: "А654АА777 / ВХ1234 77", Country: "КАЗАХСТАН",
		CustomsInfo1: "10702070/170717/0012345/МДП XA12345678", CustomsInfo2: "ООО ТРАНСЛОГИСТИК", CustomsInfo3: "INV-2017-0042",
		InspectionDate: ts, CommentUpper: "ЗАПАСНЫЕ ЧАСТИ", CommentLower: "ОСМОТР БЕЗ ЗАМЕЧАНИЙ",
		Decision: layout.DecisionSuspected, SuspicionReason: "НЕСООТВЕТСТВИЕ ЗАЯВЛЕННОМУ ТОВАРУ", Marks: 2, Operator: "operator01",
		Containers: [2]layout.Container{{Number: "MSKU1234565", From: "КИТАЙ", To: "РОССИЯ", Cargo: "870899", Direction: layout.DirectionImport}}}
	good, err := cargoriw.EncodeForm(f)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := charmap.Windows1251.NewDecoder().Bytes(good)
	text := string(dec)
	cp866, _ := charmap.CodePage866.NewEncoder().String(text)
	utf16, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String(text)
	mixed := bytes.Replace(good, mustCP1251("КАЗАХСТАН"), []byte("КАЗАХСТАН"), 1)
	files := map[string][]byte{
		"good.xml":             good,
		"truncated.xml":        good[:len(good)/2],
		"empty.xml":            {},
		"malformed.xml":        []byte(strings.Replace(string(good), "</Vehicle>", "</Vehcle>", 1)),
		"trailing-garbage.xml": append(append([]byte{}, good...), []byte("</CargoRIWForm>")...),
		"cp866.xml":            []byte(cp866),
		"utf16.xml":            []byte(utf16),
		"mixed-encoding.xml":   mixed,
		"huge-field.xml":       bytes.Replace(good, mustCP1251("ЗАПАСНЫЕ ЧАСТИ"), bytes.Repeat([]byte("A"), cargoriw.MaxField+1), 1),
		"wrong-numsnim.xml":    bytes.Replace(good, []byte("<NumSnim>202611208505910001"), []byte("<NumSnim>202611208505910999"), 1),
		"no-reason.xml":        bytes.Replace(good, mustCP1251("НЕСООТВЕТСТВИЕ ЗАЯВЛЕННОМУ ТОВАРУ"), nil, 1),
		"bad-date.xml":         bytes.Replace(good, []byte("<Created>2026-11-20"), []byte("<Created>2026-13-45"), 1),
		"unknown-decision.xml": bytes.Replace(good, mustCP1251("Объект под подозрением"), mustCP1251("Объект под вопросом"), 1),
		"binary.xml":           bytes.Repeat([]byte{0x00, 0xff, 0x13, 0x37}, 64),
		"external-entity.xml":  []byte(strings.Replace(string(good), "<CargoRIWForm", "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n<CargoRIWForm", 1)),
		"entity-in-field.xml":  bytes.Replace(good, []byte("<Operator>operator01"), []byte("<Operator>&e;"), 1),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join("testdata", "forms", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustCP1251(s string) []byte {
	b, err := charmap.Windows1251.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return b
}
