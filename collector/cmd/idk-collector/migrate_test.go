package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	bolt "go.etcd.io/bbolt"

	"idk/collector/blob/blobtest"
	"idk/collector/kv"
	"idk/collector/kv/pgkv"
	"idk/collector/store"
	"idk/internal/testenv"
	"idk/protocol/idkpb"
)

// migrateSource makes the store.root of a collector that kept everything
// to itself, with n small files uploaded through the store, and returns
// it with the files' content by StoredAs.
func migrateSource(t *testing.T, n int) (string, map[string][]byte) {
	t.Helper()
	root := t.TempDir()
	st, err := store.Open(root, store.Options{Location: time.UTC, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	dev := &idkpb.Device{NumIdk: "850591", KodTo: "10216100"}
	at := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	files := map[string][]byte{}
	for i := range n {
		data := make([]byte, 64+i%13)
		rand.Read(data)
		sum := sha256.Sum256(data)
		o := &idkpb.FileOffer{NumSnim: fmt.Sprintf("S%d", i/3), Name: fmt.Sprintf("f%d.raw", i%3), Kind: idkpb.FileKind_FILE_KIND_RAW,
			Size: uint64(len(data)), Sha256: sum[:], ScanTimeUnixNano: at.UnixNano()}
		up, _, err := st.Offer(dev, o, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := up.Write(&idkpb.Chunk{Data: data, Crc32C: crc32.Checksum(data, castagnoli)}); err != nil {
			t.Fatal(err)
		}
		key, err := up.Commit(sum[:])
		if err != nil {
			t.Fatal(err)
		}
		up.Close()
		files[key] = data
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return root, files
}

// migrateConfig writes a collector configuration whose [region] names
// the test's PostgreSQL database (the password in a file of its own) and
// bucket.
func migrateConfig(t *testing.T, root, dsn string, bucket blobtest.Bucket) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The password goes through its file, as in production; a server
	// that trusts loopback (deploy/dev/services) ignores one it did not
	// ask for.
	pwLine := ""
	if u, err := url.Parse(dsn); dsn != "" && err == nil && u.User != nil {
		pw, ok := u.User.Password()
		if !ok {
			pw = "not-asked-for"
		}
		u.User = url.User(u.User.Username())
		dsn = u.String()
		write("pg.password", pw+"\n")
		pwLine = "postgres_password_file = \"pg.password\"\n"
	}
	write("s3.access", bucket.Env.AccessKey+"\n")
	write("s3.secret", bucket.Env.SecretKey+"\n")
	cfg := fmt.Sprintf(`[store]
root = %q
timezone = "UTC"

[region]
postgres = %q
%s
[region.s3]
endpoint = %q
bucket = %q
prefix = "idk/"
access_key_file = "s3.access"
secret_key_file = "s3.secret"
`, root, dsn, pwLine, bucket.Env.Endpoint, bucket.Name)
	write("collector.toml", cfg)
	return filepath.Join(dir, "collector.toml")
}

// buildCollector builds this command into a temporary folder.
func buildCollector(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "idk-collector")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var sentNow = regexp.MustCompile(`\((\d+) files, \d+ bytes sent now\)`)

// runAndKill starts cmd and kills it (SIGKILL) once ready says so; it
// fails the test if cmd ends first.
func runAndKill(t *testing.T, cmd *exec.Cmd, ready func() (bool, error)) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("the migration ended (%v) before it could be killed half-way:\n%s", err, out.String())
		default:
		}
		ok, err := ready()
		if err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
		if ok {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-exited
			return
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("not half-way after a minute:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A migration killed (SIGKILL) half-way through the index, then half-way
// through the files, continues when run again, and ends with every key
// verified and every file in the bucket, each with the source file's
// content: nothing was stored with wrong content, and no file sent before
// the kill was sent again.
func TestMigrateResumesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the collector")
	}
	dsn := testenv.Postgres(t)
	bucket := blobtest.New(t, "idk-migrate-")
	const n = 300
	root, files := migrateSource(t, n)
	cfg := migrateConfig(t, root, dsn, bucket)
	bin := buildCollector(t)

	// First killed in the middle of the index: a transaction per key,
	// killed once some is copied and before the last bucket (scans, in
	// bbolt's order) is done.
	pg, err := pgkv.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	progress := func() (map[string]string, error) {
		got := map[string]string{}
		err := pg.View(func(tx kv.Tx) error {
			return tx.Scan("migrate", []byte("index/"), kv.PrefixEnd([]byte("index/")), false, func(k, v []byte) error {
				got[string(k)] = string(v)
				return nil
			})
		})
		return got, err
	}
	runAndKill(t, exec.Command(bin, "migrate", "-config", cfg, "-to", "postgres", "-batch", "1"), func() (bool, error) {
		p, err := progress()
		return len(p) > 0 && !strings.Contains(p["index/index/scans"], `"done":true`), err
	})
	p, err := progress()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(p["index/index/scans"], `"done":true`) {
		t.Fatalf("the index was copied before the kill: it proves nothing (%q)", p)
	}
	t.Logf("killed in the index: %q", p)

	// Then in the middle of the files.
	runAndKill(t, exec.Command(bin, "migrate", "-config", cfg, "-to", "postgres", "-files", "s3", "-workers", "1"), func() (bool, error) {
		keys, err := bucket.Keys(t.Context())
		return len(keys) >= 10, err
	})
	keys, err := bucket.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := len(keys)
	if before >= n {
		t.Fatalf("all %d files were sent before the kill: it proves nothing", before)
	}
	t.Logf("killed in the files with %d of %d in the bucket", before, n)

	var out2, err2 bytes.Buffer
	cmd := exec.Command(bin, "migrate", "-config", cfg, "-to", "postgres", "-files", "s3")
	cmd.Stdout, cmd.Stderr = &out2, &err2
	if err := cmd.Run(); err != nil {
		t.Fatalf("second run: %v\n%s\n%s", err, out2.String(), err2.String())
	}
	t.Logf("second run: %s", strings.TrimSpace(out2.String()))
	if testing.Verbose() {
		t.Logf("its log:\n%s", err2.String())
	}
	m := sentNow.FindStringSubmatch(out2.String())
	if m == nil {
		t.Fatalf("no summary in %q", out2.String())
	}
	if sent, _ := strconv.Atoi(m[1]); sent > n-before {
		t.Errorf("the second run sent %d files; %d were in the bucket already, so at most %d were left", sent, before, n-before)
	}

	// Every object, read back, is a source file with its content.
	keys, err = bucket.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(files) {
		t.Errorf("%d objects in the bucket, want %d", len(keys), len(files))
	}
	for _, key := range keys {
		data, ok := files[strings.TrimPrefix(key, "idk/")]
		if !ok {
			t.Errorf("object %s is no file of the source", key)
			continue
		}
		obj, err := bucket.Client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket.Name), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("object %s: content differs from the source file", key)
		}
	}

	// A third run finds everything there and verified.
	var out3 bytes.Buffer
	if code := migrateCommand([]string{"-config", cfg, "-to", "postgres", "-files", "s3"}, &out3, io.Discard); code != 0 {
		t.Fatalf("third run: exit %d\n%s", code, out3.String())
	}
	if m := sentNow.FindStringSubmatch(out3.String()); m == nil || m[1] != "0" {
		t.Errorf("third run: %q, want nothing sent", out3.String())
	}
}

// The command's exit status: 1 when a file does not verify (it is
// listed), 2 when it cannot run.
func TestMigrateCommandStatus(t *testing.T) {
	var out, errb bytes.Buffer
	if code := migrateCommand(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: idk-collector migrate") {
		t.Errorf("no destination: exit %d, %q; want 2 and the usage", code, errb.String())
	}
	bucket := blobtest.New(t, "idk-migrate-")
	root, files := migrateSource(t, 3)
	var bad string
	for key := range files {
		bad = key
		break
	}
	if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(bad)), []byte("not what the agent sent"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := migrateConfig(t, root, "", bucket)
	out.Reset()
	errb.Reset()
	if code := migrateCommand([]string{"-config", cfg, "-to", "postgres"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "region.postgres is not set") {
		t.Errorf("-to postgres without region.postgres: exit %d, %q; want 2", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	code := migrateCommand([]string{"-config", cfg, "-files", "s3://" + bucket.Name + "/elsewhere"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "PROBLEM "+bad) {
		t.Errorf("a changed file: exit %d, output %q; want 1 and the file listed", code, out.String())
	}
	if !strings.Contains(out.String(), "2 files") {
		t.Errorf("output %q: want the two good files verified", out.String())
	}
	// s3://BUCKET/PREFIX put them under PREFIX/.
	keys, err := bucket.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Errorf("objects %q: want the two good files", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "elsewhere/") || strings.TrimPrefix(k, "elsewhere/") == bad {
			t.Errorf("object %s: want the good files under elsewhere/", k)
		}
	}

	// The collector running (holding its index's lock, as bbolt does):
	// told to stop it first.
	db, err := bolt.Open(filepath.Join(root, "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	errb.Reset()
	if code := migrateCommand([]string{"-config", cfg, "-files", "s3"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "stop the collector first") {
		t.Errorf("collector running: exit %d, %q", code, errb.String())
	}
}
