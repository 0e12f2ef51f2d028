package integration

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

var (
	// operatorMetricRE finds the operator's own metrics where the code
	// defines them (prometheus.CounterOpts{Name: "chatgroup_..."}).
	operatorMetricRE = regexp.MustCompile(`Name:\s+"(chatgroup_[a-z_]+)"`)
	// queryMetricRE finds metric names in PromQL.
	queryMetricRE = regexp.MustCompile(`\b(chatgroup_[a-z_]+|controller_runtime_[a-z_]+|workqueue_[a-z_]+)\b`)
)

// TestGrafanaDashboard_coversTheOperatorMetrics: every query of the
// dashboard in config/components/monitoring reads a metric the operator
// exports, and every metric the operator defines has a panel. A renamed or
// new metric (for example resync drift, once it exists) fails here until
// the dashboard follows.
func TestGrafanaDashboard_coversTheOperatorMetrics(t *testing.T) {
	g := NewWithT(t)
	root := testsupport.RepoRoot()
	raw, err := os.ReadFile(filepath.Join(root, "config", "components", "monitoring", "grafana-dashboard.json"))
	g.Expect(err).NotTo(HaveOccurred())
	var dashboard struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	g.Expect(json.Unmarshal(raw, &dashboard)).To(Succeed())
	g.Expect(dashboard.UID).To(Equal("chatgroup-operator"))

	defined := definedMetrics(t, root)
	g.Expect(defined).NotTo(BeEmpty())
	queried := map[string]bool{}
	for _, p := range dashboard.Panels {
		if p.Type == "row" {
			continue
		}
		g.Expect(p.Targets).NotTo(BeEmpty(), "panel %q has queries", p.Title)
		for _, target := range p.Targets {
			for _, m := range queryMetricRE.FindAllString(target.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					m = strings.TrimSuffix(m, suffix)
				}
				queried[m] = true
				if strings.HasPrefix(m, "chatgroup_") {
					g.Expect(defined).To(ContainElement(m), "panel %q queries %s, which the operator does not define", p.Title, m)
				}
			}
		}
	}
	for _, m := range defined {
		g.Expect(queried).To(HaveKey(m), "no panel shows %s", m)
	}
}

// definedMetrics lists the chatgroup_ metrics the operator's Go code
// defines, outside tests and hack/.
func definedMetrics(t *testing.T, root string) []string {
	t.Helper()
	found := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "bin" || rel == "hack" || rel == "test" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range operatorMetricRE.FindAllStringSubmatch(string(src), -1) {
			found[m[1]] = true
		}
		return nil
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	var names []string
	for m := range found {
		names = append(names, m)
	}
	sort.Strings(names)
	return names
}
