package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The list logic is pure; these run without the daemon.

func TestReadExpectedFailures(t *testing.T) {
	p := filepath.Join(t.TempDir(), "list.txt")
	content := "# comment\n\n## group\n[k8s.io] A spec # not implemented yet: #5\n[k8s.io] B # with # inside # reason\n"
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readExpectedFailures(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"[k8s.io] A spec": "not implemented yet: #5", "[k8s.io] B # with # inside": "reason"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"no reason here\n", "a # r\na # r\n"} {
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readExpectedFailures(p); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestCompare(t *testing.T) {
	specs := []spec{
		{name: "passes", status: "passed"},
		{name: "listed-passes", status: "passed"},
		{name: "listed-fails", status: "failed"},
		{name: "new-failure", status: "failed", message: "boom\nstack"},
		{name: "timed-out", status: "timedout"},
		{name: "skipped", status: "skipped"},
	}
	expected := map[string]string{"listed-passes": "r", "listed-fails": "r", "timed-out": "r", "gone": "r"}
	tests := []struct {
		name    string
		partial bool
		want    comparison
	}{
		{"full run", false, comparison{passed: 2, failed: 3, skipped: 1,
			unexpected: []string{"new-failure [failed] boom"}, nowPassing: []string{"listed-passes"}, stale: []string{"gone"}}},
		{"focused run", true, comparison{passed: 2, failed: 3, skipped: 1,
			unexpected: []string{"new-failure [failed] boom"}, nowPassing: []string{"listed-passes"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := compare(specs, expected, tt.partial); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
