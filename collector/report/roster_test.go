package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/simulator/simclock"
)

const rosterSample = `# Officers of the post.
[[officer]]
login = "petrov"
fio = "ПЕТРОВ ПЕТР ПЕТРОВИЧ"
lnp = "056"

[[officer]]
login = " Ivanova.A "
fio = "ИВАНОВА АННА СЕРГЕЕВНА"
lnp = "283"
`

func writeRosterFile(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// Distinct modification times: the roster looks at time and size.
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func TestRosterLookupAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "officers.toml")
	writeRosterFile(t, path, rosterSample, time.Unix(1000, 0))
	clk := simclock.New(time.Date(2026, 11, 28, 10, 0, 0, 0, entMSK))
	r, err := OpenRoster(path, clk)
	if err != nil {
		t.Fatal(err)
	}
	var _ Roster = r
	for _, login := range []string{"petrov", "PETROV", " Petrov "} {
		if o, ok := r.Officer(login); !ok || o != (Officer{FIO: "ПЕТРОВ ПЕТР ПЕТРОВИЧ", LNP: "056"}) {
			t.Errorf("Officer(%q) = %+v, %v", login, o, ok)
		}
	}
	if o, ok := r.Officer("ivanova.a"); !ok || o.LNP != "283" {
		t.Errorf("ivanova.a: %+v %v", o, ok)
	}
	if _, ok := r.Officer("sidorov"); ok {
		t.Error("sidorov is not listed")
	}

	// A change is seen once the check is due, not before.
	writeRosterFile(t, path, rosterSample+"\n[[officer]]\nlogin = \"sidorov\"\nfio = \"СИДОРОВ С С\"\nlnp = \"7\"\n", time.Unix(2000, 0))
	if _, ok := r.Officer("sidorov"); ok {
		t.Error("re-read before the check was due")
	}
	clk.Advance(rosterReloadEvery)
	if o, ok := r.Officer("sidorov"); !ok || o.LNP != "7" {
		t.Errorf("after the change: %+v %v", o, ok)
	}

	// A broken edit keeps the last good roster, and Err says why.
	writeRosterFile(t, path, rosterSample+"\n[[officer]]\nlogin = \"x\"\nfio = \"Иванов\"\nlnp = \"1\"\n", time.Unix(3000, 0))
	clk.Advance(rosterReloadEvery)
	if _, ok := r.Officer("sidorov"); !ok {
		t.Error("the last good roster was dropped")
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "officer 3 (x): field fio") {
		t.Errorf("Err: %v", err)
	}
	writeRosterFile(t, path, rosterSample, time.Unix(4000, 0))
	clk.Advance(rosterReloadEvery)
	if err := r.Err(); err != nil {
		t.Errorf("Err after the fix: %v", err)
	}
	if _, ok := r.Officer("sidorov"); ok {
		t.Error("sidorov removed but still listed")
	}

	// Removing the file empties the roster.
	os.Remove(path)
	clk.Advance(rosterReloadEvery)
	if _, ok := r.Officer("petrov"); ok {
		t.Error("removed file still answers")
	}
}

func TestRosterMissingFileIsEmpty(t *testing.T) {
	r, err := OpenRoster(filepath.Join(t.TempDir(), "none.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Officer("petrov"); ok {
		t.Fatal("empty roster answered")
	}
}

func TestRosterErrorsNameFileEntryField(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, content, want string }{
		{"lower-case fio", "[[officer]]\nlogin = \"a\"\nfio = \"Петров\"\nlnp = \"1\"\n", "officer 1 (a): field fio: \"Петров\" has lower-case letters"},
		{"no fio", "[[officer]]\nlogin = \"a\"\nlnp = \"1\"\n", "officer 1 (a): field fio: required"},
		{"lnp letters", "[[officer]]\nlogin = \"a\"\nfio = \"А\"\nlnp = \"05B\"\n", "officer 1 (a): field lnp: \"05B\" is not an ЛНП number"},
		{"no lnp", "[[officer]]\nlogin = \"a\"\nfio = \"А\"\n", "officer 1 (a): field lnp: required"},
		{"no login", "[[officer]]\nfio = \"А\"\nlnp = \"1\"\n", "officer 1: field login: required"},
		{"login twice", "[[officer]]\nlogin = \"a\"\nfio = \"А\"\nlnp = \"1\"\n[[officer]]\nlogin = \" A\"\nfio = \"Б\"\nlnp = \"2\"\n", "officer 2: field login: \" A\" is already officer 1's"},
		{"unknown key", "[[officer]]\nlogin = \"a\"\nfio = \"А\"\nlnp = \"1\"\nrank = \"x\"\n", "unknown setting officer.rank"},
		{"not TOML", "[[officer]\n", "roster "},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".toml")
		writeRosterFile(t, path, c.content, time.Unix(1000, 0))
		_, err := OpenRoster(path, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want %q naming %s", c.name, err, c.want, path)
		}
	}
}
