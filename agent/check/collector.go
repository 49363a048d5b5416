package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/quic-go/quic-go"

	"idk/agent/config"
	"idk/agent/ship"
	"idk/protocol"
	"idk/protocol/transport"
)

// collector dials the collector as the shipper does and says its hello;
// the reply carries the collector's clock, checked last.
func collector(ctx context.Context, cfg config.Config, opt Options, certs Report) Report {
	addrs := cfg.Collector.Addresses()
	res := Result{Name: NameCollector, Detail: strings.Join(addrs, ", ")}
	clk := Result{Name: NameClock, Status: Skip, Text: "часы не сверены / clock not compared", Detail: "нет связи со сборщиком / no hello from the collector"}
	if f, _ := certs.Find(NameCertKey); f.Status != OK {
		res.Status, res.Text = Skip, "сборщик не проверен / collector not checked"
		res.Detail = "нет годной пары сертификат-ключ / no usable certificate and key"
		return Report{res, clk}
	}
	if _, err := cfg.TLSServerName(); err != nil {
		res.Status, res.Text, res.Detail = Fail, "адрес сборщика неверен / collector address is not valid", err.Error()
		return Report{res, clk}
	}
	// An empty server name: each collector's own host, as the shipper does.
	tlsConf, err := transport.ClientTLS(cfg.Collector.Cert, cfg.Collector.Key, cfg.Collector.CA, cfg.Collector.ServerName)
	if err != nil {
		res.Status, res.Text, res.Detail = Fail, "настройки TLS не собираются / TLS settings cannot be built", err.Error()
		return Report{res, clk}
	}
	tlsConf.NextProtos = []string{protocol.ALPN}
	qc := transport.QUICConfig()
	qc.HandshakeIdleTimeout = opt.Timeout
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	offset, err := ship.Probe(ctx, ship.Config{
		Addrs:   addrs,
		TLS:     tlsConf,
		QUIC:    qc,
		Device:  cfg.DeviceProto(),
		Clock:   opt.Clock,
		Log:     opt.Log,
		Version: opt.Version,
	})
	if err != nil {
		res.Status, res.Detail = Fail, err.Error()
		res.Text, res.Fix = explain(err)
		return Report{res, clk}
	}
	res.Status, res.Text = OK, "сборщик отвечает и принимает этот ИДК / collector answers and accepts this ИДК"

	clk.Detail = fmt.Sprintf("collector minus this PC: %v", offset.Round(time.Second))
	if offset.Abs() > MaxClockOffset {
		clk.Status, clk.Text = Warn, "часы расходятся со сборщиком / clock differs from the collector's"
		clk.Fix = "включите синхронизацию времени (w32tm /resync) / turn on time synchronisation (w32tm /resync)"
	} else {
		clk.Status, clk.Text = OK, "часы сверены со сборщиком / clock agrees with the collector's"
	}
	return Report{res, clk}
}

// codeRefused is the collector's QUIC application error code for a refused
// identity or hello (collector/server).
const codeRefused quic.ApplicationErrorCode = 1

// explain names a failed dial or hello for the person at the scanner.
func explain(err error) (text, fix string) {
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	var tlsAlert *quic.TransportError
	var opErr *net.OpError
	var appErr *quic.ApplicationError
	switch {
	// The collector answers a refused hello, and also closes the
	// connection with its reason (application error 1), which may arrive
	// first.
	case strings.Contains(err.Error(), "collector refused hello"),
		errors.As(err, &appErr) && appErr.Remote && appErr.ErrorCode == codeRefused:
		return "сборщик отказал этому ИДК / collector refused this ИДК",
			"причина указана выше; обычно это регистрация или код таможни (device.kod_to) / the reason is given; usually enrolment or the customs code (device.kod_to)"
	case errors.As(err, &tlsAlert) && tlsAlert.ErrorCode.IsCryptoError():
		return "TLS-соединение не установлено: сертификат отвергнут / the TLS handshake failed: a certificate was refused",
			"проверьте, что сертификат не отозван и выдан этим сборщиком, и server_name / check that the certificate is not revoked and comes from this collector, and collector.server_name"
	case errors.As(err, &idle), errors.As(err, &hs), errors.Is(err, context.DeadlineExceeded), errors.As(err, &opErr):
		return "сборщик не отвечает / collector does not answer",
			"проверьте collector.addr, сеть и что порт UDP открыт на межсетевом экране, и что сборщик запущен / check collector.addr, the network, that the UDP port is open in the firewall, and that the collector runs"
	}
	return "связь со сборщиком не установлена / cannot talk to the collector",
		"проверьте сеть и настройки [collector] / check the network and the [collector] settings"
}
