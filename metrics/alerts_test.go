package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/redisleak/redisleak/metrics"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

var metricName = regexp.MustCompile(`\bredisleak_[a-z_]+\b`)

// TestAlertRules checks alerts.yml: that it parses as a Prometheus rule file
// (unknown fields refused), that each rule has a severity, a summary and a
// description whose templates parse, and that every metric it names is one
// the collector exports.
func TestAlertRules(t *testing.T) {
	src, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	if len(f.Groups) == 0 {
		t.Fatal("alerts.yml: no groups")
	}

	exported := exportedNames(t)
	seen := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("rule %q: want a unique alert name", r.Alert)
			}
			seen[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: empty expr", r.Alert)
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") ||
				strings.Count(r.Expr, "{") != strings.Count(r.Expr, "}") ||
				strings.Count(r.Expr, "[") != strings.Count(r.Expr, "]") {
				t.Errorf("%s: unbalanced brackets in %q", r.Alert, r.Expr)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for: %v", r.Alert, err)
				}
			}
			if !slices.Contains([]string{"info", "warning", "critical"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want info, warning or critical", r.Alert, r.Labels["severity"])
			}
			names := metricName.FindAllString(r.Expr, -1)
			if len(names) == 0 {
				t.Errorf("%s: names no redisleak metric", r.Alert)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("%s: %s is not exported by the collector", r.Alert, n)
				}
			}
			for _, a := range []string{"summary", "description"} {
				text := r.Annotations[a]
				if strings.TrimSpace(text) == "" {
					t.Errorf("%s: no %s", r.Alert, a)
					continue
				}
				if err := checkTemplate(text); err != nil {
					t.Errorf("%s: %s: %v", r.Alert, a, err)
				}
			}
		}
	}
}

// checkTemplate parses and runs an annotation as Prometheus does, with its
// $labels and $value and stand-ins for its functions.
func checkTemplate(text string) error {
	funcs := template.FuncMap{}
	for _, name := range []string{"humanize", "humanizePercentage", "humanizeDuration"} {
		funcs[name] = func(v float64) string { return "x" }
	}
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).
		Parse("{{$labels := .Labels}}{{$value := .Value}}" + text)
	if err != nil {
		return err
	}
	var b strings.Builder
	return tmpl.Execute(&b, map[string]any{"Labels": map[string]string{}, "Value": 0.5})
}

// exportedNames returns the names of the families the collector exports,
// for a single client and a ring of two shards (whose nodes have families
// of their own).
func exportedNames(t *testing.T) map[string]bool {
	cl, _ := newClient(t)
	r, err := pool.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": miniredis.RunT(t).Addr(), "b": miniredis.RunT(t).Addr()}},
		pool.WithTracker(tracker.New()), pool.WithLogger(discard), pool.WithMaxConnectionsPerNode(maxConns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	for i := range 10 {
		if err := r.Set(context.Background(), fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewCollector(cl, r))
	names := map[string]bool{}
	for n := range series(t, reg) {
		names[n[:strings.IndexByte(n, '{')]] = true
	}
	return names
}

// TestAlertRulesPromtool checks alerts.yml and runs its unit tests in
// testdata/alerts_test.yml with promtool, when promtool is on PATH; CI sets
// REDISLEAK_REQUIRE_SERVER=1, and then a missing promtool is a failure.
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("REDISLEAK_REQUIRE_SERVER") == "1" {
			t.Fatalf("promtool not on PATH and REDISLEAK_REQUIRE_SERVER=1: %v", err)
		}
		t.Skip("promtool not on PATH; install it (apt-get install prometheus) to check the alert rules")
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "testdata/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
