// Package tools checks that every program the code and the tests run is
// installed by the repo's own scripts (hack/install-*.sh), or comes with
// every Debian 12 machine (a package of Priority "required"), or is the
// toolchain the README starts from (go, make, git). A green run on a
// machine that happens to have a program hides a missing install step:
// `make test` then fails on a new machine (it did, for ping).
package tools

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"sort"
	"strings"
	"testing"
)

// programRe finds a program named by a literal in exec.Command("x", …),
// exec.CommandContext(ctx, "x", …) and exec.LookPath("x").
var programRe = regexp.MustCompile(`exec\.(?:Command\(|CommandContext\([A-Za-z_.()]+, |LookPath\()"([A-Za-z0-9_.+-]+)"`)

// toolchain is what the README's two commands start from on a new machine.
var toolchain = map[string]bool{"go": true, "make": true, "git": true}

// ours are the programs this repo builds (make build).
var ours = map[string]bool{"cri-runtime": true, "cri-runtime-shim": true, "cri-runtime-pause": true}

func repoRoot(t *testing.T) string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// programs maps each program the Go code runs to the files that run it.
func programs(t *testing.T, root string) map[string][]string {
	out, err := exec.Command("git", "-C", root, "ls-files", "*.go").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	found := map[string][]string{}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "test/tools/") {
			continue // its examples are not programs it runs
		}
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range programRe.FindAllSubmatch(data, -1) {
			name := string(m[1])
			found[name] = append(found[name], f)
		}
	}
	return found
}

// installScripts is the text of what installs things: hack/*.sh, the
// Makefile and .ci.
func installScripts(t *testing.T, root string) string {
	var b bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(root, "hack", "*.sh"))
	files = append(files, filepath.Join(root, "Makefile"))
	ci, _ := filepath.Glob(filepath.Join(root, ".ci", "*"))
	for _, f := range append(files, ci...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.String()
}

// aptPackages are the packages the install scripts install: the words of
// their "for p in ...; do" lists, the one form both scripts use for it.
func aptPackages(t *testing.T, root string) map[string]bool {
	files, _ := filepath.Glob(filepath.Join(root, "hack", "install-*.sh"))
	re := regexp.MustCompile(`(?m)^for p in (.*); do$`)
	pkgs := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(data, -1) {
			for _, w := range strings.Fields(string(m[1])) {
				pkgs[strings.Trim(w, `"`)] = true
			}
		}
	}
	if len(pkgs) < 5 {
		t.Fatalf("found only %v in the install scripts' apt lists: the list pattern no longer matches them", pkgs)
	}
	return pkgs
}

func mentions(text, word string) bool {
	return regexp.MustCompile(`(^|[^A-Za-z0-9_.+-])` + regexp.QuoteMeta(word) + `($|[^A-Za-z0-9_.+-])`).MatchString(text)
}

// debianPackage is the package that owns path ("" if none), trying the
// /bin ↔ /usr/bin aliases of a merged-/usr system.
func debianPackage(path string) string {
	candidates := []string{path}
	for _, pair := range [][2]string{{"/usr/bin/", "/bin/"}, {"/usr/sbin/", "/sbin/"}} {
		if strings.HasPrefix(path, pair[0]) {
			candidates = append(candidates, pair[1]+strings.TrimPrefix(path, pair[0]))
		} else if strings.HasPrefix(path, pair[1]) {
			candidates = append(candidates, pair[0]+strings.TrimPrefix(path, pair[1]))
		}
	}
	for _, c := range candidates {
		out, err := exec.Command("dpkg", "-S", c).Output()
		if err == nil {
			return strings.TrimSpace(strings.SplitN(string(out), ":", 2)[0])
		}
	}
	return ""
}

func TestEveryProgramIsInstalledByAScript(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("not a Debian machine: dpkg is missing, so package ownership cannot be checked")
	}
	root := repoRoot(t)
	scripts := installScripts(t, root)
	apt := aptPackages(t, root)
	found := programs(t, root)
	if len(found) < 5 {
		t.Fatalf("found only %v: the program pattern no longer matches the code", found)
	}
	var problems []string
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		where := strings.Join(found[name], ", ")
		if toolchain[name] || ours[name] {
			continue
		}
		path, err := exec.LookPath(name)
		if err != nil {
			problems = append(problems, name+" (run by "+where+") is not installed: no script in hack/ installs it")
			continue
		}
		// /usr/bin/gcc is package gcc's link to gcc-12's binary: the
		// name's own package counts first.
		pkg := debianPackage(path)
		if resolved, err := filepath.EvalSymlinks(path); pkg == "" && err == nil {
			path = resolved
			pkg = debianPackage(path)
		}
		switch {
		case pkg == "":
			// Built by a script (runc, crictl, critest, the kubelet).
			if !mentions(scripts, name) {
				problems = append(problems, name+" ("+path+", run by "+where+") belongs to no Debian package and no script in hack/ builds it")
			}
		case apt[pkg]:
		default:
			prio, _ := exec.Command("dpkg-query", "-W", "-f=${Priority}", pkg).Output()
			if strings.TrimSpace(string(prio)) != "required" {
				problems = append(problems, name+" (Debian package "+pkg+", priority "+strings.TrimSpace(string(prio))+", run by "+where+") is not on every new machine and no apt list of hack/install-*.sh has "+pkg)
			}
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
}

func TestProgramPattern(t *testing.T) {
	src := `exec.Command("ping", "-c1") exec.CommandContext(ctx, "script", "-qec") exec.LookPath("runc") exec.Command(bin, "--config")`
	var got []string
	for _, m := range programRe.FindAllStringSubmatch(src, -1) {
		got = append(got, m[1])
	}
	if strings.Join(got, ",") != "ping,script,runc" {
		t.Fatalf("pattern found %v, want ping, script, runc", got)
	}
}
