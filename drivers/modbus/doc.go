// Package modbus reads a scanner's controller (PLC) over Modbus TCP or
// Modbus RTU and reports its state as named signals, placed by a register
// map that is configuration rather than code.
//
// A Config names the controller, the polling cadence and the Map; New
// checks it and Run polls until its context ends:
//
//	p, err := modbus.New(cfg) // cfg decoded from TOML, see testdata/plc.toml
//	if err != nil {
//		return err // every map problem, each naming its field
//	}
//	return p.Run(ctx, func(s modbus.Sample) {
//		if s.Err != nil {
//			// Link down: the state is unknown, not "everything off".
//			return
//		}
//		ready := s.Flags[modbus.Ready]
//		...
//	})
//
// The package simulator/plc serves the same Map from a simulated controller
// for tests.
package modbus
