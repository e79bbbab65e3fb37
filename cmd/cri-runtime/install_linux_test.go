package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitFile = "../../contrib/systemd/cri-runtime.service"

// unitKeys parses a systemd unit file into section → key → values (a key
// may repeat).
func unitKeys(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: not a key=value line in a section: %q", path, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSystemdUnit: the unit has what the daemon needs under systemd.
func TestSystemdUnit(t *testing.T) {
	u := unitKeys(t, unitFile)
	for _, tc := range []struct{ section, key, want string }{
		{"Service", "Type", "notify"},         // READY=1 after restore
		{"Service", "KillMode", "process"},    // a restart never kills the shims
		{"Service", "Delegate", "yes"},        // the pods' cgroups are ours
		{"Service", "OOMScoreAdjust", "-999"}, // containers go first
		{"Service", "Restart", "on-failure"},  // restart on failure
		{"Service", "LimitNOFILE", "1048576"}, // a shim and a log per container
		{"Service", "ExecStart", "/usr/local/bin/cri-runtime"},
		{"Service", "ExecReload", "/bin/kill -s HUP $MAINPID"},
		{"Install", "WantedBy", "multi-user.target"},
		{"Unit", "Before", "kubelet.service"},
	} {
		got := u[tc.section][tc.key]
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("[%s] %s = %q, want %q", tc.section, tc.key, got, tc.want)
		}
	}
	// systemd's own checker, where it is installed: it says nothing about
	// a good unit (it needs the ExecStart binary to exist).
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: only the keys were checked")
		return
	}
	bin := filepath.Join(daemonBinaries(t), "cri-runtime")
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "cri-runtime.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/cri-runtime", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestMakeInstall: `make install` honours DESTDIR and PREFIX, points the
// unit at the installed daemon, writes the default config once and never
// overwrites an operator's.
func TestMakeInstall(t *testing.T) {
	bin := daemonBinaries(t)
	dest := t.TempDir()
	install := func() {
		t.Helper()
		cmd := exec.Command("make", "--no-print-directory", "install", "BIN="+bin, "DESTDIR="+dest, "PREFIX=/opt/crt")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
	}
	install()
	for _, name := range []string{"cri-runtime", "cri-runtime-shim", "cri-runtime-pause"} {
		fi, err := os.Stat(filepath.Join(dest, "opt/crt/bin", name))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, mode %v", name, err, fi)
		}
	}
	unit := filepath.Join(dest, "opt/crt/lib/systemd/system/cri-runtime.service")
	if got := unitKeys(t, unit)["Service"]["ExecStart"]; len(got) != 1 || got[0] != "/opt/crt/bin/cri-runtime" {
		t.Errorf("installed unit's ExecStart = %q", got)
	}
	cfgPath := filepath.Join(dest, "etc/cri-runtime/config.toml")
	got, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := encodeConfig(defaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("installed config.toml is not `config default`:\n%s", got)
	}
	if fi, err := os.Stat(filepath.Join(dest, "etc/cri-runtime/config.d")); err != nil || !fi.IsDir() {
		t.Errorf("config.d: %v", err)
	}
	mine := "# the operator's\n[log]\nverbosity = 2\n"
	if err := os.WriteFile(cfgPath, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	install()
	if got, _ := os.ReadFile(cfgPath); string(got) != mine {
		t.Errorf("a second make install overwrote the config:\n%s", got)
	}
}
