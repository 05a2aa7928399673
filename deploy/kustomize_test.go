package deploy_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// build runs kustomize on the kustomization in dir (under deploy/) as
// kubectl apply -k does: kubectl embeds this library, with its default
// options (no file outside a kustomization's own directory).
func build(t *testing.T, dir string) resmap.ResMap {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), deployPath(dir))
	if err != nil {
		t.Fatalf("kubectl apply -k deploy/%s would fail: %v", dir, err)
	}
	return m
}

// TestKustomizationsBuild builds each kustomization the README applies, and
// holds what it applies to what TestKubernetes reads from the files, plus
// the Grafana dashboards k8s/monitoring brings from dashboards/.
func TestKustomizationsBuild(t *testing.T) {
	for _, dir := range []string{"k8s", filepath.Join("k8s", "monitoring"), filepath.Join("k8s", "ingress")} {
		t.Run(dir, func(t *testing.T) {
			m := build(t, dir)
			read, _ := loadManifests(t, dir, "otpscope")
			var got, want []string
			for _, r := range m.Resources() {
				key := r.GetKind() + "/" + r.GetName()
				got = append(got, key)
				if r.GetNamespace() != "otpscope" && r.GetKind() != "Namespace" {
					t.Errorf("%s: namespace %q; want otpscope", key, r.GetNamespace())
				}
				if r.GetLabels()["app.kubernetes.io/part-of"] != "otpscope" {
					t.Errorf("%s: labels %v; want part-of otpscope", key, r.GetLabels())
				}
				// kubectl apply (client side) keeps each object in an
				// annotation of at most 256 KiB.
				if y, err := r.AsYAML(); err != nil || len(y) > 256<<10 {
					t.Errorf("%s: %d bytes of YAML, %v; kubectl apply refuses an object over 256 KiB", key, len(y), err)
				}
			}
			for key := range read {
				want = append(want, key)
			}
			if dir == filepath.Join("k8s", "monitoring") {
				want = append(want, dashboardConfigMaps(t, m)...)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("kustomize builds %q; the files hold %q", got, want)
			}
		})
	}
}

// dashboardConfigMaps checks that m holds every dashboard of dashboards/ as
// a ConfigMap of its own, as the file is, labelled for Grafana's sidecar,
// and returns their kind/names.
func dashboardConfigMaps(t *testing.T, m resmap.ResMap) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "dashboards", "*.json"))
	if len(files) != 3 {
		t.Fatalf("dashboards/: %d dashboards; want the three", len(files))
	}
	var keys []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		key := "ConfigMap/otpscope-dashboard-" + name
		keys = append(keys, key)
		var data map[string]string
		for _, r := range m.Resources() {
			if r.GetKind()+"/"+r.GetName() == key {
				data = r.GetDataMap()
				if r.GetLabels()["grafana_dashboard"] != "1" {
					t.Errorf("%s: labels %v; want grafana_dashboard: \"1\", the Grafana sidecar's", key, r.GetLabels())
				}
			}
		}
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) != 1 || data[filepath.Base(f)] != string(want) {
			t.Errorf("%s: keys %v; want %s as dashboards/ holds it", key, slices.Sorted(maps.Keys(data)), filepath.Base(f))
		}
	}
	return keys
}
