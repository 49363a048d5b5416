package diskfree

import "testing"

func TestBytesOfTempDir(t *testing.T) {
	n, err := Bytes(t.TempDir())
	if err != nil || n == 0 {
		t.Fatalf("free bytes %d, %v", n, err)
	}
	if _, err := Bytes("/no/such/folder/here"); err == nil {
		t.Fatal("no error for a missing folder")
	}
}
