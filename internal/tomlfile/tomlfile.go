// Package tomlfile reads a daemon's configuration file the way both
// daemons want it: over the defaults already in the value, refusing
// settings it does not know (a misspelt name is caught, not ignored), and
// taking relative paths relative to the file's own folder, so that a
// configuration folder can be moved whole.
package tomlfile

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// Decode reads path into v. Errors name the file.
func Decode(path string, v any) error {
	md, err := toml.DecodeFile(path, v)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("%s: unknown setting %s", path, strings.Join(keys, ", "))
	}
	return nil
}

// Resolve makes each non-empty relative path relative to the folder of
// the configuration file at path.
func Resolve(path string, paths ...*string) {
	base := filepath.Dir(path)
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
}
