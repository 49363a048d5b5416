package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"idk/agent/config"
	"idk/agent/devstate"
	"idk/agent/telemetry"
	"idk/drivers/modbus"
)

// stateRequest is what `idk-agent state` sends to the running agent.
type stateRequest struct {
	State string `json:"state"`
	Cause string `json:"cause,omitempty"`
	Note  string `json:"note,omitempty"`
}

type stateReply struct {
	State string    `json:"state"`
	Cause string    `json:"cause,omitempty"`
	Note  string    `json:"note,omitempty"`
	Since time.Time `json:"since"`
	Site  string    `json:"site,omitempty"`
	Error string    `json:"error,omitempty"`
}

// stateHandler serves the staff's declarations on the agent's local
// listener (127.0.0.1 by default): GET shows the state, POST declares one.
func stateHandler(tel *telemetry.Telemetry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			var req stateRequest
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(stateReply{Error: "request body: " + err.Error()})
				return
			}
			d, err := telemetry.ParseDeclaration(req.State, req.Cause, req.Note)
			if err == nil {
				err = tel.Declare(d)
			}
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(stateReply{Error: err.Error()})
				return
			}
		} else if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		c := tel.Current()
		json.NewEncoder(w).Encode(stateReply{State: telemetry.StateName(c.State), Cause: telemetry.CauseName(c.Cause),
			Note: c.Note, Since: c.Time, Site: c.Site.Name})
	})
}

// stateCommand is `idk-agent state STATE [-cause C] [-note N]`: it asks
// the running agent to record a state that the controller cannot know.
func stateCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("state", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "agent.toml", "the agent's configuration file")
	cause := fs.String("cause", "", "cause of an inoperable state: reboot, weather, generator, boom, accelerator, chassis, software, other")
	note := fs.String("note", "", "what is going on, for the report")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: idk-agent state [operations|maintenance|inoperable|relocation|clear|show] [-cause C] [-note N] [-config F]")
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return 2
	}
	state, rest := args[0], args[1:]
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	base, ok := agentAddr(*cfgPath, stderr)
	if !ok {
		return 2
	}
	var body any // show: none, a GET
	if state != "show" {
		body = stateRequest{State: state, Cause: *cause, Note: *note}
	}
	var rep stateReply
	if err := askAgent(base+"/state", body, &rep); err != nil {
		fmt.Fprintln(stderr, "idk-agent:", err)
		return 1
	}
	if rep.Error != "" {
		fmt.Fprintln(stderr, "idk-agent:", rep.Error)
		return 1
	}
	fmt.Fprintf(stdout, "state: %s", rep.State)
	if rep.Cause != "" {
		fmt.Fprintf(stdout, " (%s)", rep.Cause)
	}
	fmt.Fprintf(stdout, " since %s", rep.Since.Local().Format("02.01.2006 15:04:05"))
	if rep.Site != "" {
		fmt.Fprintf(stdout, " at %s", rep.Site)
	}
	if rep.Note != "" {
		fmt.Fprintf(stdout, " — %s", rep.Note)
	}
	fmt.Fprintln(stdout)
	return 0
}

// agentAddr is the running agent's base URL, from metrics.listen in its
// configuration file path; on failure it has said why on stderr.
func agentAddr(path string, stderr io.Writer) (string, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, "idk-agent:", err)
		return "", false
	}
	if cfg.Metrics.Listen == "" {
		fmt.Fprintf(stderr, "idk-agent: %s: metrics.listen is empty, so the running agent takes no commands\n", path)
		return "", false
	}
	return "http://" + cfg.Metrics.Listen, true
}

// askAgent sends a command to the running agent's local listener: body
// as JSON in a POST, or a GET when body is nil. It decodes the answer,
// error or not, into reply: the agent says what went wrong in the reply.
func askAgent(url string, body, reply any) error {
	client := &http.Client{Timeout: 10 * time.Second}
	var resp *http.Response
	var err error
	if body == nil {
		resp, err = client.Get(url)
	} else {
		var b []byte
		if b, err = json.Marshal(body); err != nil {
			return fmt.Errorf("request to %s: %w", url, err)
		}
		resp, err = client.Post(url, "application/json", bytes.NewReader(b))
	}
	if err != nil {
		return fmt.Errorf("is the agent running? %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(reply); err != nil {
		return fmt.Errorf("reply from %s (%s): %w", url, resp.Status, err)
	}
	return nil
}

// engineConfig maps the configuration file onto the state engine.
func engineConfig(cfg config.Config) devstate.Config {
	home := devstate.Site{Name: cfg.Device.NaimZTK, KodTO: cfg.Device.KodTO, NaimTO: cfg.Device.NaimTO,
		Disl: cfg.Device.DislIDK, Lat: cfg.Telemetry.Lat, Lon: cfg.Telemetry.Lon}
	ec := devstate.Config{
		Mobile:           cfg.Device.TypeIDK == 1,
		Home:             home,
		RelocationRadius: cfg.Telemetry.RelocationRadius,
		RelocationSpeed:  cfg.Telemetry.RelocationSpeed,
		ArrivalDwell:     cfg.Telemetry.ArrivalDwell,
		LinkGrace:        cfg.Telemetry.LinkGrace,
	}
	for _, s := range cfg.Sites {
		ec.Sites = append(ec.Sites, devstate.Site{Name: s.NaimZTK, KodTO: s.KodTO, NaimTO: s.NaimTO, Disl: s.DislIDK, Lat: s.Lat, Lon: s.Lon, Radius: s.Radius})
	}
	return ec
}

// controllerConfig is nil when no controller is wired.
func controllerConfig(cfg config.Config) *modbus.Config {
	if cfg.Controller.Transport == "" {
		return nil
	}
	c := cfg.Controller
	return &c
}
