package e2e

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// expectedFailuresFile lists the critest specs allowed to fail, one per
// line: "<spec name> # <reason>". The list only ever shrinks: a spec that
// passes is reported so that its line gets removed.
const expectedFailuresFile = "critest-expected-failures.txt"

// critestPorts are the host ports critest's port-mapping, port-forward and
// host-network specs bind; they must be free.
var critestPorts = []int{12000, 12001, 12002, 12003}

// TestCritest runs the CRI validation suite (critest v1.37.0) against the
// daemon and compares the result with the expected-failure list.
//
// Knobs (for local runs; CI uses the defaults):
//
//	CRITEST             critest binary (default: from PATH)
//	CRITEST_TIMEOUT     time budget of the whole suite (default 15m)
//	CRITEST_FOCUS       -ginkgo.focus regexp: run only matching specs
//	CRITEST_SKIP        -ginkgo.skip regexp
//	CRITEST_FLAKE_ATTEMPTS  -ginkgo.flake-attempts (default 1: no retry)
//
// TestCritest runs critest on each CNI chain (cni_chains_test.go): ours,
// and one without a loopback plugin, like Flannel's and Calico's.
func TestCritest(t *testing.T) {
	requireEnv(t)
	for _, chain := range cniChains() {
		t.Run("cni="+chain, func(t *testing.T) {
			useCNIChain(t, chain)
			runCritest(t, chain)
		})
	}
}

// runCritest runs critest once; its report and log are named after chain.
func runCritest(t *testing.T, chain string) {
	bin := getenv("CRITEST", "critest")
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("critest not found (%v): run hack/install-test-tools.sh", err)
	}
	for _, p := range critestPorts {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("critest needs host port %d free: %v", p, err)
		}
		l.Close()
	}
	budget, err := time.ParseDuration(getenv("CRITEST_TIMEOUT", "15m"))
	if err != nil {
		t.Fatalf("CRITEST_TIMEOUT: %v", err)
	}
	expected, err := readExpectedFailures(expectedFailuresFile)
	if err != nil {
		t.Fatal(err)
	}

	report := filepath.Join(env.artifacts, "critest-junit-"+chain+".xml")
	logPath := filepath.Join(env.artifacts, "critest-"+chain+".log")
	os.Remove(report)
	args := []string{
		"-runtime-endpoint", env.endpoint,
		"-image-endpoint", env.endpoint,
		"-ginkgo.junit-report", report,
		"-ginkgo.no-color",
		// ginkgo's own suite timeout: on expiry it interrupts the running
		// spec and still writes the report; the context below is the
		// backstop if it does not.
		"-ginkgo.timeout", budget.String(),
		"-ginkgo.flake-attempts", getenv("CRITEST_FLAKE_ATTEMPTS", "1"),
	}
	if env.nriSocket != "" {
		// Without it critest skips its NRI specs.
		args = append(args, "-nri-socket", env.nriSocket)
	}
	if f := os.Getenv("CRITEST_FOCUS"); f != "" {
		args = append(args, "-ginkgo.focus", f)
	}
	if s := os.Getenv("CRITEST_SKIP"); s != "" {
		args = append(args, "-ginkgo.skip", s)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	ctx, cancel := context.WithTimeout(context.Background(), budget+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = env.tmp // critest writes nothing there, but never into the repo
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Logf("critest %s (log: %s)", strings.Join(args, " "), logPath)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	critestPID.Store(int64(cmd.Process.Pid))
	runErr := cmd.Wait()
	critestPID.Store(0)
	wall := time.Since(start).Round(100 * time.Millisecond)

	specs, err := readJUnit(report)
	if err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("critest (%v, exit: %v) left no usable report: %v\nlast lines of %s:\n%s", wall, runErr, err, logPath, tail(string(log), 40))
	}
	res := compare(specs, expected, os.Getenv("CRITEST_FOCUS") != "" || os.Getenv("CRITEST_SKIP") != "")
	// Alone on its line, so it reads as the suite's closing count.
	fmt.Printf("critest (cni=%s): %d passed, %d failed, %d skipped\n", chain, res.passed, res.failed, res.skipped)
	t.Logf("critest ran in %v (exit: %v); %d failures expected by %s", wall, runErr, res.failed-len(res.unexpected), expectedFailuresFile)
	for _, n := range res.nowPassing {
		t.Logf("now passes, remove from %s: %s", expectedFailuresFile, n)
	}
	for _, n := range res.stale {
		t.Logf("listed in %s but not in this run's report (renamed or removed upstream?): %s", expectedFailuresFile, n)
	}
	if len(res.unexpected) > 0 {
		sort.Strings(res.unexpected)
		t.Errorf("%d critest specs failed that %s does not expect (details: %s, %s):\n  %s",
			len(res.unexpected), expectedFailuresFile, logPath, report, strings.Join(res.unexpected, "\n  "))
	}
	if res.passed+res.failed == 0 {
		t.Errorf("critest ran no spec (exit: %v)", runErr)
	}
}

// critestPID is the running critest's pid (its process group), for the
// harness to kill on an interrupt.
var critestPID atomic.Int64

func killCritest() {
	if pid := critestPID.Load(); pid > 0 {
		_ = syscall.Kill(-int(pid), syscall.SIGKILL)
	}
}

// spec is one test case of the JUnit report.
type spec struct {
	name    string
	status  string // passed, failed, skipped, pending, panicked, interrupted, timedout, aborted
	message string
}

type junitReport struct {
	Suites []struct {
		Cases []struct {
			Name    string `xml:"name,attr"`
			Status  string `xml:"status,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// specName is the spec's full text as critest -ginkgo.focus matches it:
// ginkgo's JUnit name without the leading node type ("[It] ").
func specName(junitName string) string {
	return strings.TrimPrefix(junitName, "[It] ")
}

func readJUnit(path string) ([]spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r junitReport
	if err := xml.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var out []spec
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			sp := spec{name: specName(c.Name), status: c.Status}
			isSpec := strings.HasPrefix(c.Name, "[It] ")
			switch {
			case c.Failure != nil:
				sp.message = c.Failure.Message
			case c.Error != nil:
				sp.message = c.Error.Message
			}
			if sp.status == "" { // older reporters: infer from the children
				switch {
				case c.Failure != nil || c.Error != nil:
					sp.status = "failed"
				case c.Skipped != nil:
					sp.status = "skipped"
				default:
					sp.status = "passed"
				}
			}
			// Setup nodes ([BeforeSuite], [AfterSuite], ...) count only when
			// they fail: a broken BeforeSuite fails every spec silently.
			if isSpec || (sp.status != "passed" && sp.status != "skipped") {
				out = append(out, sp)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no test case", path)
	}
	return out, nil
}

// readExpectedFailures parses the list: "<spec name> # <reason>" per line;
// blank lines and lines starting with '#' are comments.
func readExpectedFailures(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndex(line, " # ")
		if i < 0 {
			return nil, fmt.Errorf("%s:%d: want \"<spec name> # <reason>\"", path, n)
		}
		name, reason := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+3:])
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s:%d: %q listed twice", path, n, name)
		}
		out[name] = reason
	}
	return out, sc.Err()
}

type comparison struct {
	passed, failed, skipped int
	unexpected              []string // failed, not on the list
	nowPassing              []string // on the list, passed
	stale                   []string // on the list, not in the report
}

// compare sorts the report against the list. partial (a focus or skip was
// given) silences "stale" lines for specs that were simply not selected.
func compare(specs []spec, expected map[string]string, partial bool) comparison {
	var c comparison
	seen := map[string]bool{}
	for _, s := range specs {
		seen[s.name] = true
		switch s.status {
		case "passed":
			c.passed++
			if _, ok := expected[s.name]; ok {
				c.nowPassing = append(c.nowPassing, s.name)
			}
		case "skipped", "pending":
			c.skipped++
		default: // failed, panicked, interrupted, timedout, aborted
			c.failed++
			if _, ok := expected[s.name]; !ok {
				msg := s.message
				if i := strings.IndexByte(msg, '\n'); i >= 0 {
					msg = msg[:i]
				}
				c.unexpected = append(c.unexpected, fmt.Sprintf("%s [%s] %s", s.name, s.status, msg))
			}
		}
	}
	if !partial {
		for name := range expected {
			if !seen[name] {
				c.stale = append(c.stale, name)
			}
		}
		sort.Strings(c.stale)
	}
	sort.Strings(c.nowPassing)
	return c
}
