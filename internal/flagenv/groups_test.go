package flagenv

import (
	"flag"
	"testing"
)

func TestGroups(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var g Groups
	g.Add(fs, "Process", func() { fs.String("listen", "", ""); fs.String("data-dir", "", "") })
	g.Add(fs, "NATS", func() { fs.String("nats-url", "", "") })
	g.Add(fs, "Process", func() { fs.Int("max-connections", 0, "") })
	fs.String("log-level", "", "")
	for flag, want := range map[string]string{"listen": "Process", "data-dir": "Process", "max-connections": "Process", "nats-url": "NATS", "log-level": ""} {
		if got := g.Of(flag); got != want {
			t.Errorf("Of(%q) = %q; want %q", flag, got, want)
		}
	}
	if len(g) != 2 || g[0].Name != "Process" || len(g[0].Flags) != 3 {
		t.Errorf("groups = %+v; want Process (3 flags), NATS", g)
	}
}
