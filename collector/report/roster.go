package report

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"

	"idk/internal/clock"
)

// FileRoster is the roster of officers from a TOML file that an
// administrator edits: the login each one signs CargoRIW forms with, and
// the Ф.И.О. and ЛНП number table 1 (FIO_OPER, LNP_OPER) names them by.
// It is re-read when it changes (checked at most every two seconds); if a
// changed file cannot be read, the last good contents stay in force and
// Err says why.
//
// The file:
//
//	# Officers of the post: the CargoRIW login, and the Ф.И.О. and ЛНП
//	# number the daily report names them by. Ф.И.О. in upper case (A4
//	# rule 4); the ЛНП number as digits, with its leading zeros.
//	# The collector re-reads this file within seconds of a change.
//
//	[[officer]]
//	login = "petrov"
//	fio = "ПЕТРОВ ПЕТР ПЕТРОВИЧ"
//	lnp = "056"
//
//	[[officer]]
//	login = "ivanova.a"
//	fio = "ИВАНОВА АННА СЕРГЕЕВНА"
//	lnp = "283"
//
// Logins are compared without case and surrounding blanks: CargoRIW
// writes them as the operator typed them at log-in.
type FileRoster struct {
	path  string
	clock clock.Clock

	mu        sync.Mutex
	officers  map[string]Officer // by normalised login
	mod       time.Time
	size      int64
	checkedAt time.Time
	err       error // of the last reload, nil once it succeeds
}

// rosterReloadEvery bounds how often the file is looked at.
const rosterReloadEvery = 2 * time.Second

// rosterOfficer is one [[officer]] of the file.
type rosterOfficer struct {
	Login string `toml:"login"`
	FIO   string `toml:"fio"`
	LNP   string `toml:"lnp"`
}

// rosterLogin is how logins are compared.
func rosterLogin(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ReadRoster reads and checks the roster file at path, returning the
// officers by login as Officer compares them. A missing file is an empty
// roster, so that a collector without one starts, its table 1 rows
// listing FIO_OPER and LNP_OPER as missing. Errors name the file, the
// officer's number in it (1-based) and the field.
func ReadRoster(path string) (map[string]Officer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Officer{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("roster: %w", err)
	}
	var f struct {
		Officer []rosterOfficer `toml:"officer"`
	}
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("roster %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("roster %s: unknown setting %s: want [[officer]] with login, fio, lnp", path, und[0])
	}
	m := make(map[string]Officer, len(f.Officer))
	first := map[string]int{}
	for i, o := range f.Officer {
		n := i + 1
		login := rosterLogin(o.Login)
		fio := strings.TrimSpace(o.FIO)
		lnp := strings.TrimSpace(o.LNP)
		switch {
		case login == "":
			return nil, fmt.Errorf("roster %s: officer %d: field login: required", path, n)
		case first[login] > 0:
			return nil, fmt.Errorf("roster %s: officer %d: field login: %q is already officer %d's (logins are compared without case)", path, n, o.Login, first[login])
		case fio == "":
			return nil, fmt.Errorf("roster %s: officer %d (%s): field fio: required", path, n, o.Login)
		case strings.IndexFunc(fio, unicode.IsLower) >= 0:
			return nil, fmt.Errorf("roster %s: officer %d (%s): field fio: %q has lower-case letters: the report is upper case (A4 rule 4): %q", path, n, o.Login, fio, strings.ToUpper(fio))
		case strings.IndexFunc(fio, unicode.IsControl) >= 0:
			return nil, fmt.Errorf("roster %s: officer %d (%s): field fio: %q has a control character", path, n, o.Login, fio)
		case lnp == "":
			return nil, fmt.Errorf("roster %s: officer %d (%s): field lnp: required", path, n, o.Login)
		case !digitsRE.MatchString(lnp):
			return nil, fmt.Errorf("roster %s: officer %d (%s): field lnp: %q is not an ЛНП number: want digits, as text with its leading zeros (\"056\")", path, n, o.Login, o.LNP)
		}
		first[login] = n
		m[login] = Officer{FIO: fio, LNP: lnp}
	}
	return m, nil
}

// OpenRoster loads the roster at path. A missing file is an empty roster,
// not an error. clk, clock.Real if nil, paces the checks for a changed
// file.
func OpenRoster(path string, clk clock.Clock) (*FileRoster, error) {
	r := &FileRoster{path: path, clock: clock.Or(clk), officers: map[string]Officer{}}
	if err := r.reload(); err != nil {
		return nil, err
	}
	r.checkedAt = r.clock.Now()
	return r, nil
}

// Path is the roster file.
func (r *FileRoster) Path() string { return r.path }

func (r *FileRoster) reload() error {
	fi, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		r.officers, r.mod, r.size = map[string]Officer{}, time.Time{}, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("roster: %w", err)
	}
	if fi.ModTime().Equal(r.mod) && fi.Size() == r.size {
		return nil
	}
	m, err := ReadRoster(r.path)
	if err != nil {
		return err
	}
	r.officers, r.mod, r.size = m, fi.ModTime(), fi.Size()
	return nil
}

// check re-reads the file if it is due.
func (r *FileRoster) check() {
	if now := r.clock.Now(); now.Sub(r.checkedAt) >= rosterReloadEvery {
		r.checkedAt = now
		r.err = r.reload()
	}
}

// Officer returns the officer who logs in as login. It implements Roster.
func (r *FileRoster) Officer(login string) (Officer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.check()
	o, ok := r.officers[rosterLogin(login)]
	return o, ok
}

// Err reports a changed file that could not be read, whose last good
// contents are answering, for the caller to log or show; nil when the
// file in force is the one on disk.
func (r *FileRoster) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.check()
	return r.err
}
