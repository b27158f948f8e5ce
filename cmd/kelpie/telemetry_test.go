package main

import (
	"bytes"
	"testing"
)

// TestServeObservabilityConfig: --pprof-addr and --metrics-public, and
// their environment variables, reach the server's configuration; both
// are off by default.
func TestServeObservabilityConfig(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		f          serveFlags
		env        map[string]string
		wantPprof  string
		wantPublic bool
	}{
		{name: "defaults"},
		{name: "flags", args: []string{"--pprof-addr", "127.0.0.1:6060", "--metrics-public"},
			f: serveFlags{pprofAddr: "127.0.0.1:6060", metricsPublic: true}, wantPprof: "127.0.0.1:6060", wantPublic: true},
		{name: "environment", env: map[string]string{envPprofAddr: "127.0.0.1:6061", envMetricsPublic: "true"}, wantPprof: "127.0.0.1:6061", wantPublic: true},
		{name: "flag wins", args: []string{"--metrics-public=false"}, env: map[string]string{envMetricsPublic: "1"}},
	} {
		cmd := newServeCmd(&bytes.Buffer{}, envOf(tc.env))
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg := serveConfig(cmd, tc.f, envOf(tc.env))
		if cfg.PprofAddr != tc.wantPprof || cfg.MetricsPublic != tc.wantPublic {
			t.Errorf("%s: PprofAddr %q, MetricsPublic %v; want %q, %v", tc.name, cfg.PprofAddr, cfg.MetricsPublic, tc.wantPprof, tc.wantPublic)
		}
	}
}
