// Package deps enforces the dependency rule of STYLE.md §A.2 over the
// import graph `go list -deps` reports: which of our packages each layer may
// import, and which third-party modules must stay out of it (cri-api out of
// the shim, go-runc out of the facade, …). A violation names the offending
// package and the shortest import chain that brings it in.
//
// Only non-test code counts, except for test/e2e, which is all tests and
// must stay a black box over the daemon's socket.
package deps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cri-runtime/cri-runtime"

// Third-party packages the table names.
const (
	criAPI = "k8s.io/cri-api/..."
	goRunc = "github.com/containerd/go-runc/..."
	bbolt  = "go.etcd.io/bbolt/..."
	grpc   = "google.golang.org/grpc/..."
	klog   = "k8s.io/klog/..."
)

// rule is one row of the table. Patterns are import paths, ours relative to
// the module ("pkg/shim/..."), others in full; "/..." matches the path and
// everything below it.
type rule struct {
	pkgs string // the packages the row covers

	// free: no constraint (the daemon's main, tools, benchmarks).
	free bool
	// ours lists the only packages of ours the covered packages may import
	// (their own subtree is always allowed). With oursDeep the whole
	// dependency closure is held to it, else only direct imports.
	ours     []string
	oursDeep bool
	// deny: never anywhere in the dependency closure.
	deny []string
	// denyDirect: never imported directly (allowed through a layer that
	// may import it, e.g. pkg/cri → pkg/runtime → pkg/shim/client).
	denyDirect []string
	// stdOnly: the closure is the standard library and nothing else.
	stdOnly bool
	// external, when set, is the only non-standard code that may be
	// imported directly besides ours (their own dependencies are theirs).
	external []string
	// tests: hold test files' imports to the row too.
	tests bool
	// source says where the row comes from when it is not STYLE.md §A.2.
	source string
}

var rules = []rule{
	{pkgs: "cmd/cri-runtime", free: true},
	{
		pkgs: "cmd/cri-runtime-shim",
		ours: []string{"pkg/shim/...", "pkg/errdefs"}, oursDeep: true,
		deny: []string{criAPI, bbolt, grpc, klog},
	},
	// The facade's sub-packages that hold no CRI objects: they never
	// import pkg/cri (it imports them), and what they need of it is an
	// interface they declare.
	{
		pkgs: "pkg/cri/stats",
		ours: []string{"pkg/errdefs"}, oursDeep: true,
		deny:   []string{goRunc, bbolt},
		source: "docs/architecture.md (cgroup, /proc and layer readers and the metric series; no task runtime)",
	},
	{
		pkgs: "pkg/cri/events",
		ours: []string{"pkg/errdefs"}, oursDeep: true,
		deny:   []string{goRunc, bbolt},
		source: "docs/architecture.md (the container event broadcaster; no task runtime)",
	},
	{
		pkgs: "pkg/cri/chunks",
		ours: []string{}, oursDeep: true,
		source: "docs/architecture.md (the Stream* RPCs' chunking; imports nothing of ours)",
	},
	{
		pkgs: "pkg/cri/stream",
		ours: []string{"pkg/errdefs", "pkg/network"}, oursDeep: true,
		deny:   []string{goRunc, bbolt},
		source: "docs/architecture.md (the streaming server and exec plumbing, over interfaces pkg/cri implements)",
	},
	{
		pkgs:       "pkg/cri/images",
		ours:       []string{"pkg/image", "pkg/errdefs", "pkg/cri/chunks"},
		deny:       []string{goRunc, "pkg/runtime/...", "pkg/shim/..."},
		denyDirect: []string{bbolt},
		source:     "docs/architecture.md (the CRI ImageService over the image service)",
	},
	{
		pkgs: "pkg/cri/host",
		// pkg/image for its Mount (the idmapped rootfs), pkg/cri/spec
		// for the capability and user namespace helpers.
		ours:       []string{"pkg/errdefs", "pkg/image", "pkg/cri/spec"},
		deny:       []string{goRunc, "pkg/runtime/...", "pkg/shim/..."},
		denyDirect: []string{bbolt},
		source:     "docs/architecture.md (the facade's host probes, dirs and mounts; no task runtime)",
	},
	{
		// Before pkg/cri/...: the first row that matches a package holds it.
		pkgs: "pkg/cri/lifecycle",
		ours: []string{"pkg/errdefs"}, oursDeep: true,
		external: []string{"k8s.io/cri-api/pkg/apis/runtime/v1"},
		source:   "docs/architecture.md (the CRI objects' lifecycle table, pure: not a row of STYLE.md §A.2)",
	},
	{
		pkgs: "pkg/cri/...",
		// pkg/nri: the facade's NRI adapter, docs/nri.md.
		ours:       []string{"pkg/runtime", "pkg/image", "pkg/network", "pkg/store", "pkg/errdefs/...", "pkg/nri", "pkg/confval"},
		deny:       []string{goRunc, "pkg/shim/service/...", "pkg/shim/process/..."},
		denyDirect: []string{"pkg/shim/...", bbolt},
	},
	{
		pkgs: "pkg/runtime/...",
		ours: []string{"pkg/shim/api", "pkg/shim/client", "pkg/store", "pkg/errdefs"},
		deny: []string{criAPI, goRunc, "pkg/shim/service/...", "pkg/shim/process/..."},
	},
	{
		pkgs: "pkg/shim/...",
		ours: []string{"pkg/errdefs"}, oursDeep: true,
		deny: []string{criAPI, bbolt},
	},
	{
		pkgs: "pkg/image/...",
		ours: []string{"pkg/store", "pkg/errdefs", "pkg/confval"},
		deny: []string{"pkg/cri/...", "pkg/runtime/...", "pkg/network/...", "pkg/shim/..."},
	},
	{pkgs: "pkg/store/...", ours: []string{"pkg/errdefs"}, oursDeep: true},
	{pkgs: "pkg/network/...", ours: []string{"pkg/errdefs"}, oursDeep: true},
	{
		pkgs: "pkg/nri/...",
		ours: []string{"pkg/errdefs", "pkg/confval"}, oursDeep: true,
		deny:   []string{criAPI},
		source: "docs/nri.md (not yet a row of STYLE.md §A.2)",
	},
	{
		pkgs: "pkg/metrics/...",
		ours: []string{"pkg/errdefs"}, oursDeep: true,
		deny:   []string{goRunc, bbolt},
		source: "docs/metrics.md (not yet a row of STYLE.md §A.2)",
	},
	{pkgs: "pkg/errdefs", stdOnly: true},
	{
		pkgs: "pkg/confval", ours: []string{"pkg/errdefs"}, oursDeep: true, external: []string{},
		source: "docs/architecture.md (config value types every section shares; not a row of STYLE.md §A.2)",
	},
	{
		pkgs: "pkg/errdefs/errgrpc",
		ours: []string{"pkg/errdefs"}, oursDeep: true,
		external: []string{"google.golang.org/grpc/codes", "google.golang.org/grpc/status"},
	},
	{pkgs: "test/e2e/...", ours: []string{}, oursDeep: true, tests: true},
	{pkgs: "internal/testutil/...", ours: []string{}, oursDeep: true, source: "not in the table: helpers shared by tests"},
	{pkgs: "test/bench/...", free: true, source: "not in the table: benchmarks"},
	{pkgs: "test/deps/...", free: true, source: "not in the table: this test"},
	{pkgs: "test/tools/...", free: true, source: "not in the table: the install-script check"},
	{pkgs: "hack/...", free: true, source: "not in the table: build tools"},
}

// pkg is what go list says of one package.
type pkg struct {
	ImportPath   string
	Standard     bool
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// graph is the import graph of the module's packages and all they import.
type graph struct {
	pkgs map[string]*pkg
	ours []string // the module's packages, sorted
}

func goList(t *testing.T, args ...string) []*pkg {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	cmd := exec.Command("go", append([]string{"list", "-e", "-json=ImportPath,Standard,Imports,TestImports,XTestImports,Error"}, args...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var pkgs []*pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, &p)
	}
	return pkgs
}

func loadGraph(t *testing.T) *graph {
	t.Helper()
	g := &graph{pkgs: map[string]*pkg{}}
	// Our packages with their test imports, then the closure of all of it.
	roots := []string{"./..."}
	for _, p := range goList(t, "./...") {
		if p.Error != nil {
			t.Fatalf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		g.ours = append(g.ours, p.ImportPath)
		g.pkgs[p.ImportPath] = p
		roots = append(roots, p.TestImports...)
		roots = append(roots, p.XTestImports...)
	}
	slices.Sort(g.ours)
	roots = slices.Compact(slices.Sorted(slices.Values(roots)))
	for _, p := range goList(t, append([]string{"-deps"}, roots...)...) {
		if _, ok := g.pkgs[p.ImportPath]; !ok {
			g.pkgs[p.ImportPath] = p
		}
	}
	return g
}

func isOurs(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// short strips the module prefix from our import paths.
func short(path string) string {
	if isOurs(path) {
		return strings.TrimPrefix(path, module+"/")
	}
	return path
}

// match reports whether the import path matches pattern (ours relative to
// the module, others in full; "/..." for a subtree).
func match(pattern, path string) bool {
	if !strings.Contains(strings.SplitN(pattern, "/", 2)[0], ".") {
		pattern = module + "/" + pattern
	}
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	for _, p := range patterns {
		if match(p, path) {
			return true
		}
	}
	return false
}

// direct returns what p imports (with its tests' imports if tests).
func (g *graph) direct(p *pkg, tests bool) []string {
	imps := slices.Clone(p.Imports)
	if tests {
		imps = append(imps, p.TestImports...)
		imps = append(imps, p.XTestImports...)
	}
	slices.Sort(imps)
	return slices.Compact(imps)
}

// closure walks the dependencies of root breadth first; chain(dep) is the
// shortest import chain from root to dep.
func (g *graph) closure(root string, tests bool) (deps []string, chain func(string) string) {
	parent := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		p, ok := g.pkgs[cur]
		if !ok {
			continue
		}
		for _, imp := range g.direct(p, tests && cur == root) {
			if imp == "C" || imp == "unsafe" {
				continue
			}
			if _, seen := parent[imp]; !seen {
				parent[imp] = cur
				deps = append(deps, imp)
				queue = append(queue, imp)
			}
		}
	}
	return deps, func(dep string) string {
		var path []string
		for p := dep; p != ""; p = parent[p] {
			path = append(path, short(p))
		}
		slices.Reverse(path)
		return strings.Join(path, " → ")
	}
}

func (r rule) String() string {
	if r.source != "" {
		return fmt.Sprintf("%s (%s)", r.pkgs, r.source)
	}
	return fmt.Sprintf("%s (STYLE.md §A.2)", r.pkgs)
}

// check returns the violations of r by the package path.
func (g *graph) check(r rule, path string) []string {
	if r.free {
		return nil
	}
	var errs []string
	report := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	p := g.pkgs[path]
	deps, chain := g.closure(path, r.tests)
	direct := g.direct(p, r.tests)
	allowedOurs := func(dep string) bool {
		return match(r.pkgs, dep) || matchAny(r.ours, dep)
	}
	if r.stdOnly {
		for _, dep := range deps {
			if d, ok := g.pkgs[dep]; !ok || !d.Standard {
				report("%s: may import the standard library only, but imports %s: %s", short(path), short(dep), chain(dep))
			}
		}
	}
	if r.ours != nil {
		check := direct
		if r.oursDeep {
			check = deps
		}
		for _, dep := range check {
			if isOurs(dep) && !allowedOurs(dep) {
				report("%s: may import of ours only %s, but imports %s: %s",
					short(path), describe(r.ours), short(dep), chain(dep))
			}
		}
	}
	if r.external != nil {
		for _, dep := range direct {
			if d, ok := g.pkgs[dep]; ok && !d.Standard && !isOurs(dep) && !matchAny(r.external, dep) {
				report("%s: may import besides ours and the standard library only %s, but imports %s",
					short(path), strings.Join(r.external, ", "), dep)
			}
		}
	}
	for _, dep := range deps {
		if matchAny(r.deny, dep) && !match(r.pkgs, dep) {
			report("%s: must not import %s: %s", short(path), short(dep), chain(dep))
		}
	}
	for _, dep := range direct {
		if matchAny(r.denyDirect, dep) {
			report("%s: must not import %s directly: %s", short(path), short(dep), chain(dep))
		}
	}
	return errs
}

func describe(ours []string) string {
	if len(ours) == 0 {
		return "nothing"
	}
	return strings.Join(ours, ", ")
}

// TestDependencyRule holds every package of the module to its row.
func TestDependencyRule(t *testing.T) {
	g := loadGraph(t)
	covered := map[string]bool{}
	for _, r := range rules {
		t.Run(strings.ReplaceAll(r.pkgs, "/", "_"), func(t *testing.T) {
			var matched int
			for _, path := range g.ours {
				if !match(r.pkgs, path) || covered[path] {
					continue
				}
				covered[path] = true
				matched++
				for _, err := range g.check(r, path) {
					t.Errorf("%s\n\t(rule: %s)", err, r)
				}
			}
			if matched == 0 && !strings.HasSuffix(r.pkgs, "/...") {
				t.Errorf("rule %s matches no package: the table is stale", r)
			}
		})
	}
	for _, path := range g.ours {
		if !covered[path] {
			t.Errorf("%s has no row in the dependency table: add one to STYLE.md §A.2 and to this test", short(path))
		}
	}
}

// TestRulesCatchViolations checks the checker on a made-up graph: a rule
// that can never fail protects nothing.
func TestRulesCatchViolations(t *testing.T) {
	m := func(s string) string { return module + "/" + s }
	g := &graph{pkgs: map[string]*pkg{}}
	add := func(path string, std bool, imports ...string) {
		g.pkgs[path] = &pkg{ImportPath: path, Standard: std, Imports: imports}
		if isOurs(path) {
			g.ours = append(g.ours, path)
		}
	}
	add("fmt", true)
	add(goRuncPath, false, "fmt")
	add(m("pkg/errdefs"), false, "fmt")
	add(m("pkg/shim/process"), false, goRuncPath, m("pkg/errdefs"))
	add(m("pkg/shim/client"), false, m("pkg/errdefs"))
	add(m("pkg/runtime"), false, m("pkg/shim/client"), m("pkg/shim/process"))
	add(m("pkg/cri"), false, m("pkg/runtime"), m("pkg/shim/client"))
	add(m("pkg/store"), false, m("pkg/errdefs"), m("pkg/network"))
	add(m("pkg/network"), false, m("pkg/errdefs"))
	add(m("pkg/cri/stats"), false, m("pkg/errdefs"), m("pkg/cri"))

	for _, tc := range []struct {
		rule rule
		pkg  string
		want []string // substrings, one per expected violation
	}{
		{ruleFor(t, "pkg/runtime/..."), m("pkg/runtime"), []string{
			"pkg/runtime: may import of ours only pkg/shim/api, pkg/shim/client, pkg/store, pkg/errdefs, but imports pkg/shim/process: pkg/runtime → pkg/shim/process",
			"pkg/runtime: must not import pkg/shim/process: pkg/runtime → pkg/shim/process",
			"pkg/runtime: must not import github.com/containerd/go-runc: pkg/runtime → pkg/shim/process → github.com/containerd/go-runc",
		}},
		{ruleFor(t, "pkg/cri/..."), m("pkg/cri"), []string{
			"pkg/cri: must not import github.com/containerd/go-runc: pkg/cri → pkg/runtime → pkg/shim/process → github.com/containerd/go-runc",
			"pkg/cri: must not import pkg/shim/process: pkg/cri → pkg/runtime → pkg/shim/process",
			"pkg/cri: may import of ours only",
			"pkg/cri: must not import pkg/shim/client directly: pkg/cri → pkg/shim/client",
		}},
		// A sub-package of the facade that imports it back (and with it
		// the task runtime).
		{ruleFor(t, "pkg/cri/stats"), m("pkg/cri/stats"), []string{
			"pkg/cri/stats: may import of ours only pkg/errdefs, but imports pkg/cri: pkg/cri/stats → pkg/cri",
			"but imports pkg/runtime: pkg/cri/stats → pkg/cri → pkg/runtime",
			"but imports pkg/shim/client",
			"but imports pkg/shim/process",
			"pkg/cri/stats: must not import github.com/containerd/go-runc",
		}},
		{ruleFor(t, "pkg/store/..."), m("pkg/store"), []string{"pkg/store: may import of ours only pkg/errdefs, but imports pkg/network: pkg/store → pkg/network"}},
		{ruleFor(t, "pkg/errdefs"), m("pkg/errdefs"), []string{}},
		{rule{pkgs: "pkg/errdefs", stdOnly: true}, m("pkg/shim/process"), []string{
			"may import the standard library only, but imports github.com/containerd/go-runc",
			"may import the standard library only, but imports pkg/errdefs",
		}},
	} {
		got := g.check(tc.rule, tc.pkg)
		if len(got) != len(tc.want) {
			t.Errorf("%s under %s: got %d violations, want %d:\n%s", short(tc.pkg), tc.rule, len(got), len(tc.want), strings.Join(got, "\n"))
			continue
		}
		for _, w := range tc.want {
			if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, w) }) {
				t.Errorf("%s under %s: no violation says %q; got:\n%s", short(tc.pkg), tc.rule, w, strings.Join(got, "\n"))
			}
		}
	}
}

const goRuncPath = "github.com/containerd/go-runc"

func ruleFor(t *testing.T, pkgs string) rule {
	for _, r := range rules {
		if r.pkgs == pkgs {
			return r
		}
	}
	t.Fatalf("no rule for %s", pkgs)
	return rule{}
}
