package check

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"idk/agent/config"
	"idk/internal/diskfree"
)

// spoolLockWait is how long the check waits for the spool's lock: a
// running agent holds it for as long as it runs, so waiting longer tells
// nothing more.
const spoolLockWait = time.Second

func outputDir(cfg config.Config) Result {
	dir := cfg.Scanner.OutputDir
	res := Result{Name: NameOutputDir, Detail: dir}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		res.Status, res.Text = Fail, "папка сканера не найдена / scanner output folder does not exist"
		res.Fix = "проверьте scanner.output_dir и что программа сканера пишет туда / check scanner.output_dir and that the scanner's program writes there"
		return res
	case err != nil:
		res.Status, res.Text, res.Detail = Fail, "папка сканера недоступна / scanner output folder cannot be reached", err.Error()
		res.Fix = "проверьте права учётной записи агента и сетевой диск / check the agent account's rights and the network drive"
		return res
	case !fi.IsDir():
		res.Status, res.Text = Fail, "путь к папке сканера — не папка / scanner output path is not a folder"
		res.Fix = "укажите в scanner.output_dir папку, а не файл / set scanner.output_dir to the folder, not a file"
		return res
	}
	f, err := os.Open(dir)
	if err == nil {
		// One entry is enough to prove the listing works; a large folder
		// need not be read whole.
		_, err = f.ReadDir(1)
		f.Close()
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err != nil {
		res.Status, res.Text, res.Detail = Fail, "папка сканера не читается / scanner output folder cannot be read", err.Error()
		res.Fix = "дайте учётной записи агента право чтения / give the agent's account read access"
		return res
	}
	res.Status, res.Text = OK, "папка сканера читается / scanner output folder is readable"
	return res
}

// spoolCheck checks that the spool can be written without touching a
// running agent's spool: the bbolt file is opened read-only with a short
// lock wait, and the writing is tried with a file of its own beside it.
func spoolCheck(cfg config.Config) []Result {
	path := cfg.Spool.Path
	dir := filepath.Dir(path)
	res := Result{Name: NameSpool, Detail: path}
	if err := writable(dir); err != nil {
		res.Status, res.Text, res.Detail = Fail, "в папку очереди нельзя писать / spool folder is not writable", err.Error()
		res.Fix = "создайте папку для spool.path и дайте агенту право записи / create the folder of spool.path and give the agent write access"
		return []Result{res}
	}
	var free Result
	if n, err := diskfree.Bytes(dir); err != nil {
		free = Result{Name: NameDiskFree, Status: Warn, Text: "свободное место не узнать / free space unknown", Detail: err.Error()}
	} else if n < cfg.Spool.MinFreeBytes {
		free = Result{Name: NameDiskFree, Status: Warn, Text: "мало места на диске очереди / little free space on the spool's disk",
			Detail: fmt.Sprintf("%d MiB free, spool.min_free_bytes %d MiB", n>>20, cfg.Spool.MinFreeBytes>>20),
			Fix:    "освободите место / free some space: the agent records less telemetry below this"}
	} else {
		free = Result{Name: NameDiskFree, Status: OK, Text: "места на диске очереди достаточно / enough free space on the spool's disk",
			Detail: fmt.Sprintf("%d MiB", n>>20)}
	}

	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		res.Status, res.Text = OK, "папка очереди доступна для записи, очередь будет создана / spool folder is writable; the agent creates the spool"
		return []Result{res, free}
	case err != nil:
		res.Status, res.Text, res.Detail = Fail, "файл очереди недоступен / spool file cannot be reached", err.Error()
		res.Fix = "проверьте права на spool.path / check the rights on spool.path"
		return []Result{res, free}
	case fi.IsDir():
		res.Status, res.Text = Fail, "spool.path — папка, а не файл / spool.path is a folder, not a file"
		res.Fix = "укажите имя файла, например spool.db / name a file, e.g. spool.db"
		return []Result{res, free}
	}
	state, err := openSpool(path)
	switch state {
	case spoolLocked:
		res.Status, res.Text = OK, "очередь занята работающим агентом, папка доступна для записи / spool is in use by the running agent; its folder is writable"
	case spoolDamaged:
		res.Status, res.Text, res.Detail = Warn, "файл очереди повреждён / spool file is damaged", err.Error()
		res.Fix = "агент при запуске отложит его и соберёт очередь заново из папки сканера / at start the agent moves it aside and rebuilds the queue from the scanner's folder"
	case spoolReadOnly:
		res.Status, res.Text, res.Detail = Fail, "в файл очереди нельзя писать / spool file is not writable", err.Error()
		res.Fix = "дайте учётной записи агента право записи на spool.path / give the agent's account write access to spool.path"
	default:
		res.Status, res.Text = OK, "очередь читается, запись возможна / spool is readable and writable"
	}
	return []Result{res, free}
}

// writable creates and removes a file in dir.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".idk-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, err = f.Write([]byte("idk-agent check\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}

type spoolState int

const (
	spoolUsable   spoolState = iota
	spoolLocked              // a running agent holds it
	spoolDamaged             // bbolt cannot read it
	spoolReadOnly            // it cannot be opened for writing
)

// openSpool opens the spool read-only, which changes nothing in it, and
// then opens the file for writing without writing.
func openSpool(path string) (state spoolState, err error) {
	// bbolt panics on some kinds of damage instead of returning an error,
	// and a truncated file faults when mapped; both are damage.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			state, err = spoolDamaged, fmt.Errorf("bbolt panicked reading %s: %v", path, p)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: spoolLockWait})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return spoolLocked, nil
	case errors.Is(err, fs.ErrPermission):
		return spoolReadOnly, err
	case err != nil:
		return spoolDamaged, err
	}
	db.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return spoolReadOnly, err
	}
	f.Close()
	return spoolUsable, nil
}
