package check

import (
	"context"
	"fmt"
	"time"

	"idk/agent/config"
	"idk/drivers/gps"
	"idk/drivers/modbus"
)

// controller reads the configured registers once, with the agent's own
// driver, so that the map is exercised as the agent will use it.
func controller(ctx context.Context, cfg config.Config, opt Options) Result {
	c := cfg.Controller
	if c.Transport == "" {
		return Result{Name: NameController, Status: Skip, Text: "контроллер не настроен / no controller configured"}
	}
	res := Result{Name: NameController, Detail: fmt.Sprintf("Modbus %s %s", c.Transport, c.Address)}
	c.Logger = opt.Log
	c.Clock = nil // the check runs on the wall clock: it waits for a device
	if c.Timeout <= 0 || c.Timeout > opt.Timeout {
		c.Timeout = min(opt.Timeout, 3*time.Second)
	}
	p, err := modbus.New(c)
	if err != nil {
		res.Status, res.Text, res.Detail = Fail, "настройки контроллера неверны / controller settings are not valid", err.Error()
		res.Fix = "исправьте раздел [controller] / correct the [controller] section"
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	samples := make(chan modbus.Sample, 1)
	done := make(chan error, 1)
	go func() {
		// The first poll is made at once; one sample is all the check needs.
		done <- p.Run(ctx, func(s modbus.Sample) {
			select {
			case samples <- s:
			default:
			}
			cancel()
		})
	}()
	// Run returns once the callback has cancelled it (or on its own error):
	// wait for that, then look for the sample. Selecting on both channels
	// would pick at random when both are ready and call a good read a failure.
	err = <-done
	var s modbus.Sample
	select {
	case s = <-samples:
	default:
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = fmt.Errorf("no answer within %v", opt.Timeout)
		}
		s = modbus.Sample{Link: modbus.LinkDown, Err: err}
	}
	switch {
	case s.Err != nil && s.Link == modbus.LinkDown:
		res.Status, res.Detail = Fail, res.Detail+": "+s.Err.Error()
		res.Text = "контроллер не отвечает / controller does not answer"
		res.Fix = "проверьте питание, кабель, адрес и номер устройства; порт RTU может быть занят работающим агентом / check power, cable, address and unit id; an RTU port may be held by the running agent"
	case s.Err != nil:
		res.Status, res.Detail = Fail, res.Detail+": "+s.Err.Error()
		res.Text = "контроллер отвечает, но отказал в чтении / controller answers but refused the read"
		res.Fix = "проверьте карту регистров [controller.map] / check the register map [controller.map]"
	default:
		res.Status, res.Text = OK, "контроллер отвечает / controller answers"
		res.Detail += fmt.Sprintf(": powered=%v ready=%v scanning=%v",
			s.Flags[modbus.Powered], s.Flags[modbus.Ready], s.Flags[modbus.Scanning])
	}
	return res
}

// gpsCheck waits a few seconds for the receiver to say something.
func gpsCheck(ctx context.Context, cfg config.Config, opt Options) Result {
	port := cfg.Telemetry.GPSPort
	if port == "" {
		return Result{Name: NameGPS, Status: Skip, Text: "приёмник GPS не настроен / no GPS receiver configured"}
	}
	res := Result{Name: NameGPS, Detail: port}
	rc, err := opt.OpenGPS(port, cfg.Telemetry.GPSBaud)
	if err != nil {
		res.Status, res.Text, res.Detail = Fail, "порт GPS не открывается / GPS port cannot be opened", err.Error()
		res.Fix = "проверьте telemetry.gps_port и подключение приёмника; порт может быть занят работающим агентом / check telemetry.gps_port and the receiver; the running agent may hold the port"
		return res
	}
	type answer struct {
		fix gps.Fix
		err error
	}
	got := make(chan answer, 1)
	go func() {
		f, err := gps.NewReader(rc, opt.Log).Next()
		got <- answer{f, err}
	}()
	timer := time.NewTimer(opt.Timeout)
	defer timer.Stop()
	var a answer
	select {
	case a = <-got:
		rc.Close()
	case <-timer.C:
		rc.Close() // unblocks the read
		<-got
		a.err = fmt.Errorf("no NMEA sentence within %v", opt.Timeout)
	case <-ctx.Done():
		rc.Close()
		<-got
		a.err = ctx.Err()
	}
	switch {
	case a.err != nil:
		res.Status, res.Detail = Fail, port+": "+a.err.Error()
		res.Text = "приёмник GPS молчит / GPS receiver says nothing"
		res.Fix = "проверьте скорость telemetry.gps_baud и кабель / check telemetry.gps_baud and the cable"
	case !a.fix.Valid:
		res.Status, res.Text = Warn, "приёмник GPS отвечает, но без координат / GPS receiver answers but has no fix"
		res.Fix = "выведите антенну под открытое небо / give the antenna a view of the sky"
	default:
		res.Status, res.Text = OK, "приёмник GPS отвечает / GPS receiver answers"
		res.Detail += fmt.Sprintf(": %.5f, %.5f", a.fix.Lat, a.fix.Lon)
	}
	return res
}
