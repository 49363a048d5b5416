package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// ManifestEntry is one finished scan, as idk-sim scanner records it: one
// JSON object a line, appended as each scan is complete on disk.
type ManifestEntry struct {
	NumSnim string            `json:"num_snim"`
	Files   map[string]string `json:"files"` // base name -> hex SHA-256
}

// ReadManifest reads a manifest into Expected. A torn last line (the
// scanner was killed while appending) is ignored: that scan was not
// finished.
func ReadManifest(path string) (Expected, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	exp := Expected{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var e ManifestEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			if !sc.Scan() {
				break
			}
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		exp[e.NumSnim] = e.Files
	}
	return exp, sc.Err()
}
