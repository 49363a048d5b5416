package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/simulator/simclock"
)

func TestPutReadAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	clk := simclock.New(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	r, err := Open(path, clk)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Lookup("850591"); ok {
		t.Fatal("enrolled in an empty registry")
	}
	if err := Put(path, Agent{NumIDK: "850591", KodTO: "10216100"}); err != nil {
		t.Fatal(err)
	}
	if err := Put(path, Agent{NumIDK: "850592", KodTO: "10216100"}); err != nil {
		t.Fatal(err)
	}
	// A mobile ИДК moved to another post.
	if err := Put(path, Agent{NumIDK: "850591", KodTO: "10216200"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(reloadEvery)
	if a, ok, err := r.Lookup("850591"); !ok || err != nil || a.KodTO != "10216200" {
		t.Fatalf("after the move: %+v %v %v", a, ok, err)
	}
	if got, err := r.Offices(); err != nil || strings.Join(got, ",") != "10216100,10216200" {
		t.Fatalf("offices: %v %v", got, err)
	}
	// A broken edit: the last good registry stays in force, and the
	// error names the file and the entry.
	os.WriteFile(path, []byte("[[agent]]\nnum_idk = \"850591\"\nkod_to = \"1021\"\n"), 0o644)
	os.Chtimes(path, clk.Now().Add(time.Minute), clk.Now().Add(time.Minute))
	clk.Advance(reloadEvery)
	a, ok, err := r.Lookup("850592")
	if !ok || a.KodTO != "10216100" || err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "850591") {
		t.Fatalf("after a broken edit: %+v %v %v", a, ok, err)
	}
}

func TestReadRefusesBadEntries(t *testing.T) {
	for name, body := range map[string]string{
		"twice":   "[[agent]]\nnum_idk = \"1\"\nkod_to = \"10216100\"\n[[agent]]\nnum_idk = \"1\"\nkod_to = \"10216100\"\n",
		"bad num": "[[agent]]\nnum_idk = \"../x\"\nkod_to = \"10216100\"\n",
		"unknown": "[[agent]]\nnum_idk = \"1\"\nkod_to = \"10216100\"\nkod = \"x\"\n",
	} {
		path := filepath.Join(t.TempDir(), FileName)
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := Read(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
