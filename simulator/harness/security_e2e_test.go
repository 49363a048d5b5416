package harness

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"idk/collector/pki"
	"idk/collector/registry"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
	"idk/simulator/simclock"
)

// dialHello connects to the collector with the given client certificate
// and says hello as device numIDK. It returns nil when the collector
// accepted the hello.
func dialHello(env *Env, certDir, certNum, caDir, numIDK string, withCert bool) error {
	conf, err := transport.ClientTLS(filepath.Join(certDir, pki.AgentCertFile(certNum)), filepath.Join(certDir, pki.AgentKeyFile(certNum)),
		filepath.Join(caDir, pki.CACertFile), "localhost")
	if err != nil {
		return err
	}
	if !withCert {
		conf.Certificates = nil
	}
	conf.NextProtos = []string{protocol.ALPN}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, env.QUICAddr, conf, transport.QUICConfig())
	if err != nil {
		return err
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_HELLO})
	w.Write(&idkpb.Hello{ProtocolVersion: protocol.Version, AgentTimeUnixNano: time.Now().UnixNano(),
		Device: &idkpb.Device{NumIdk: numIDK, KodTo: "10216100", TypeIdk: 2, DislIdk: 1}})
	var rep idkpb.HelloReply
	if err := r.Read(&rep); err != nil {
		return err
	}
	if rep.Error != "" {
		return &helloError{rep.Error}
	}
	return nil
}

type helloError struct{ msg string }

func (e *helloError) Error() string { return e.msg }

// Nobody but the right ИДК gets in: no certificate, another CA's, an
// expired one, one revoked while the collector runs, and a valid one
// claiming another ИДК are all refused, and each refusal is counted.
func TestEndToEndOnlyTheRightAgentGetsIn(t *testing.T) {
	env, err := NewEnv(t.TempDir(), bin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)
	certs := filepath.Join(env.Dir, "certs")
	past := simclock.New(time.Now().Add(-3 * 365 * 24 * time.Hour))
	if _, err := pki.IssueAgent(certs, "999001", pki.Options{Clock: past, Validity: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueAgent(certs, "999002", pki.Options{}); err != nil {
		t.Fatal(err)
	}
	// Enrolled, as `pki agent --kod-to` does, so that only the certificate
	// decides.
	for _, n := range []string{"999001", "999002"} {
		if err := registry.Put(filepath.Join(certs, registry.FileName), registry.Agent{NumIDK: n, KodTO: "10216100"}); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(env.Dir, "other-ca")
	if _, err := pki.CreateCA(other, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueAgent(other, "850591", pki.Options{}); err != nil {
		t.Fatal(err)
	}
	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Stop()

	if err := dialHello(env, certs, "850591", certs, "850591", true); err != nil {
		t.Fatalf("the right agent was refused: %v", err)
	}
	if err := dialHello(env, certs, "999002", certs, "999002", true); err != nil {
		t.Fatalf("999002 before revocation: %v", err)
	}
	refusals := []struct {
		name            string
		dir, num, claim string
		withCert        bool
		series          string
	}{
		{"no certificate", certs, "850591", "850591", false, `idk_collector_handshakes_refused_total{reason="no_certificate"}`},
		{"another CA", other, "850591", "850591", true, `idk_collector_handshakes_refused_total{reason="unknown_ca"}`},
		{"expired", certs, "999001", "999001", true, `idk_collector_handshakes_refused_total{reason="expired"}`},
		{"ИДК A writing as ИДК B", certs, "850591", "850592", true, `idk_collector_connections_refused_total{reason="hello"}`},
	}
	for _, r := range refusals {
		if err := dialHello(env, r.dir, r.num, certs, r.claim, r.withCert); err == nil {
			t.Errorf("%s: accepted", r.name)
		}
		if v, err := Metric(env.HTTPAddr, r.series); err != nil || v != 1 {
			t.Errorf("%s: %s = %v, %v; want 1", r.name, r.series, v, err)
		}
	}

	// Revoked while the collector runs: it reloads the list and refuses.
	out, err := exec.Command(filepath.Join(bin, "idk-collector"), "pki", "revoke", "--dir", certs, "--num-idk", "999002").CombinedOutput()
	if err != nil {
		t.Fatalf("revoke: %v: %s", err, out)
	}
	time.Sleep(2500 * time.Millisecond) // the list is looked at every 2 s
	err = dialHello(env, certs, "999002", certs, "999002", true)
	if err == nil {
		t.Fatal("revoked agent accepted")
	}
	if v, merr := Metric(env.HTTPAddr, `idk_collector_handshakes_refused_total{reason="revoked"}`); merr != nil || v != 1 {
		t.Errorf("revoked: counted %v, %v; want 1", v, merr)
	}
	if !strings.Contains(err.Error(), "certificate") && !strings.Contains(err.Error(), "CRYPTO_ERROR") {
		t.Logf("revoked agent sees: %v", err)
	}
}
