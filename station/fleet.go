package station

import (
	"errors"
	"io/fs"

	"labelstation/protocol"
	"labelstation/station/config"
)

// loadFleet applies the last good fleet config from the state directory, so a restart comes
// back configured even before the broker answers.
func (s *Station) loadFleet() {
	raw, err := config.LoadFleet(s.cfg.Station.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		var f config.Fleet
		if f, err = config.ParseFleet(raw); err == nil {
			var c config.Config
			if c, err = s.cfg.Apply(f); err == nil {
				s.cfg = c
				return
			}
		}
	}
	s.log.Error("station: last fleet config not applied", "err", err)
}

// onConfig validates a pushed config, applies it, persists it as the last good one and reports
// the outcome; a bad push is refused with the offending field and changes nothing.
func (s *Station) onConfig(d protocol.ConfigDesired) {
	rep := protocol.ConfigReported{Version: d.Version, TS: s.opt.Now()}
	err := s.applyFleet(d.Config)
	if err != nil {
		rep.Error = err.Error()
		s.log.Warn("station: fleet config refused", "version", d.Version, "err", err)
	} else {
		rep.Applied = true
		s.post(Configured{Badges: s.config().Badge.Key() != nil})
		s.log.Info("station: fleet config applied", "version", d.Version)
	}
	if c := s.currentCloud(); c != nil {
		if err := c.ReportConfig(rep); err != nil {
			s.log.Info("station: config report not delivered", "err", err)
		}
	}
}

func (s *Station) applyFleet(raw []byte) error {
	f, err := config.ParseFleet(raw)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.cfg.Apply(f)
	if err != nil {
		return err
	}
	if err := config.SaveFleet(s.cfg.Station.StateDir, raw); err != nil {
		return err
	}
	s.cfg = c
	return nil
}
