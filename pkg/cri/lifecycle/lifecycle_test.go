package lifecycle

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

var (
	t1 = time.Unix(100, 0)
	t2 = time.Unix(200, 0)
)

// containerLabel names a container status for the matrix: its state and
// the flag in flight.
func containerLabel(c Container) string {
	s := containerStateName(c.State())
	switch {
	case c.starting && c.removing:
		return s + "+starting+removing" // never legal: the guards exclude it
	case c.starting:
		return s + "+starting"
	case c.removing:
		return s + "+removing"
	}
	return s
}

// containerStates are the statuses the matrix starts from, by label.
func containerStates() map[string]Container {
	created := Container{}
	running := Container{Pid: 7, StartedAt: t1.UnixNano()}
	exited := Container{Pid: 7, StartedAt: t1.UnixNano(), FinishedAt: t2.UnixNano(), ExitCode: 3, Reason: ReasonError}
	out := map[string]Container{}
	for _, base := range []Container{created, running, exited} {
		out[containerLabel(base)] = base
		st := base
		st.starting = true
		if st.FinishedAt != 0 {
			// Only an exit that raced the start, before its Started.
			st.StartedAt, st.Pid = 0, 0
		}
		out[containerLabel(st)] = st
		rm := base
		rm.removing = true
		out[containerLabel(rm)] = rm
	}
	return out
}

const refused = "refused"

// TestContainerTransitionMatrix walks every container status × every
// transition and precondition. The table says what each leads to: the
// label of the resulting status (a precondition that passes leaves the
// label as it was), or "refused" — then the error is a *TransitionError of
// class FailedPrecondition and the status is unchanged.
func TestContainerTransitionMatrix(t *testing.T) {
	ops := []struct {
		name string
		do   func(Container) (Container, error)
	}{
		{"MarkStarting", Container.MarkStarting},
		{"Started", func(c Container) (Container, error) { return c.Started(9, t2) }},
		{"StartFailed", func(c Container) (Container, error) { return c.StartFailed(t2, "boom") }},
		{"EndStart", Container.EndStart},
		{"MarkRemoving", Container.MarkRemoving},
		{"EndRemove", Container.EndRemove},
		{"Exited", func(c Container) (Container, error) { return c.Exited(Exit{Code: 1, At: t2}) }},
		{"TaskLost", func(c Container) (Container, error) { return c.TaskLost(t2) }},
		{"RequireRunning", func(c Container) (Container, error) { return c, c.RequireRunning() }},
		{"RequireLiveTask", func(c Container) (Container, error) { return c, c.RequireLiveTask() }},
	}
	// want[from][op] is the label after op, or refused.
	want := map[string]map[string]string{
		"CREATED": {
			"MarkStarting": "CREATED+starting", "Started": refused, "StartFailed": refused, "EndStart": "CREATED",
			"MarkRemoving": "CREATED+removing", "EndRemove": "CREATED", "Exited": "EXITED", "TaskLost": "EXITED",
			"RequireRunning": refused, "RequireLiveTask": "CREATED",
		},
		"CREATED+starting": {
			"MarkStarting": refused, "Started": "RUNNING+starting", "StartFailed": "EXITED+starting", "EndStart": "CREATED",
			"MarkRemoving": refused, "EndRemove": "CREATED+starting", "Exited": "EXITED+starting", "TaskLost": "EXITED+starting",
			"RequireRunning": refused, "RequireLiveTask": "CREATED+starting",
		},
		"CREATED+removing": {
			"MarkStarting": refused, "Started": refused, "StartFailed": refused, "EndStart": "CREATED+removing",
			"MarkRemoving": refused, "EndRemove": "CREATED", "Exited": "EXITED+removing", "TaskLost": "EXITED+removing",
			"RequireRunning": refused, "RequireLiveTask": "CREATED+removing",
		},
		"RUNNING": {
			"MarkStarting": refused, "Started": refused, "StartFailed": refused, "EndStart": "RUNNING",
			"MarkRemoving": "RUNNING+removing", "EndRemove": "RUNNING", "Exited": "EXITED", "TaskLost": "EXITED",
			"RequireRunning": "RUNNING", "RequireLiveTask": "RUNNING",
		},
		"RUNNING+starting": {
			"MarkStarting": refused, "Started": refused, "StartFailed": refused, "EndStart": "RUNNING",
			"MarkRemoving": refused, "EndRemove": "RUNNING+starting", "Exited": "EXITED+starting", "TaskLost": "EXITED+starting",
			"RequireRunning": "RUNNING+starting", "RequireLiveTask": "RUNNING+starting",
		},
		"RUNNING+removing": {
			"MarkStarting": refused, "Started": refused, "StartFailed": refused, "EndStart": "RUNNING+removing",
			"MarkRemoving": refused, "EndRemove": "RUNNING", "Exited": "EXITED+removing", "TaskLost": "EXITED+removing",
			"RequireRunning": "RUNNING+removing", "RequireLiveTask": "RUNNING+removing",
		},
		"EXITED": {
			"MarkStarting": refused, "Started": refused, "StartFailed": refused, "EndStart": "EXITED",
			"MarkRemoving": "EXITED+removing", "EndRemove": "EXITED", "Exited": "EXITED", "TaskLost": "EXITED",
			"RequireRunning": refused, "RequireLiveTask": refused,
		},
		"EXITED+starting": {
			// The exit raced a start whose Started is still to come.
			"MarkStarting": refused, "Started": "EXITED+starting", "StartFailed": "EXITED+starting", "EndStart": "EXITED",
			"MarkRemoving": refused, "EndRemove": "EXITED+starting", "Exited": "EXITED+starting", "TaskLost": "EXITED+starting",
			"RequireRunning": refused, "RequireLiveTask": refused,
		},
		"EXITED+removing": {
			"MarkStarting": refused, "Started": refused, "StartFailed": refused, "EndStart": "EXITED+removing",
			"MarkRemoving": refused, "EndRemove": "EXITED", "Exited": "EXITED+removing", "TaskLost": "EXITED+removing",
			"RequireRunning": refused, "RequireLiveTask": refused,
		},
	}
	states := containerStates()
	if len(states) != len(want) {
		t.Fatalf("%d states, %d rows in the table", len(states), len(want))
	}
	for from, st := range states {
		row, ok := want[from]
		if !ok {
			t.Fatalf("no row for %s", from)
		}
		for _, op := range ops {
			t.Run(from+"/"+op.name, func(t *testing.T) {
				exp, ok := row[op.name]
				if !ok {
					t.Fatalf("no cell for %s × %s", from, op.name)
				}
				got, err := op.do(st)
				checkCell(t, exp, containerLabel(got), err, got == st)
			})
		}
	}
}

func checkCell(t *testing.T, want, got string, err error, unchanged bool) {
	t.Helper()
	if want == refused {
		var te *TransitionError
		if !errors.As(err, &te) {
			t.Fatalf("got %s, %v; want a *TransitionError", got, err)
		}
		if !errdefs.IsFailedPrecondition(err) || errdefs.ClassName(err) != "FailedPrecondition" {
			t.Fatalf("%v is not FailedPrecondition", err)
		}
		if !unchanged {
			t.Fatalf("a refusal changed the status to %s", got)
		}
		return
	}
	if err != nil {
		t.Fatalf("got %v, want %s", err, want)
	}
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// An exit that arrives while StartContainer is still in flight is recorded
// once; the Started that follows keeps it.
func TestExitBeforeStarted(t *testing.T) {
	c, err := Container{}.MarkStarting()
	if err != nil {
		t.Fatal(err)
	}
	c, _ = c.Exited(Exit{Code: 4, At: t2})
	c, _ = c.Exited(Exit{Code: 9, At: t2.Add(time.Second)}) // a repeated exit changes nothing
	c, err = c.Started(42, t1)
	if err != nil {
		t.Fatal(err)
	}
	c, _ = c.EndStart()
	if c.State() != runtimeapi.ContainerState_CONTAINER_EXITED || c.ExitCode != 4 || c.Reason != ReasonError ||
		c.FinishedAt != t2.UnixNano() || c.StartedAt != t1.UnixNano() || c.Pid != 42 {
		t.Fatalf("status %+v", c)
	}
}

func TestExitFacts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		e          Exit
		wantReason string
	}{
		{"zero is Completed", Exit{Code: 0, At: t1}, ReasonCompleted},
		{"non-zero is Error", Exit{Code: 137, At: t1}, ReasonError},
		{"OOM kill wins", Exit{Code: 137, At: t1, OOMKilled: true}, ReasonOOMKilled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := Container{StartedAt: 1}.Exited(tc.e)
			if c.Reason != tc.wantReason || c.ExitCode != tc.e.Code || c.FinishedAt != t1.UnixNano() {
				t.Fatalf("status %+v", c)
			}
		})
	}
	lost, _ := Container{StartedAt: 1}.TaskLost(t1)
	if lost.State() != runtimeapi.ContainerState_CONTAINER_EXITED || lost.ExitCode != LostExitCode || lost.Reason != ReasonUnknown || lost.Message == "" {
		t.Fatalf("lost task: %+v", lost)
	}
	// A failed start explains an exit that raced it.
	c, _ := Container{}.MarkStarting()
	c, _ = c.Exited(Exit{Code: 1, At: t1})
	c, _ = c.StartFailed(t2, "exec: no such file")
	if c.ExitCode != StartErrorExitCode || c.Reason != ReasonStartError || c.Message != "exec: no such file" || c.FinishedAt != t2.UnixNano() {
		t.Fatalf("failed start: %+v", c)
	}
}

// sandboxLabel names a sandbox status for the matrix: READY, NOTREADY
// (network still up) or DOWN (stopped and torn down), and the flag in
// flight.
func sandboxLabel(s Sandbox) string {
	l := sandboxStateName(s.State())
	if s.NetworkDown {
		l = "DOWN"
	}
	switch {
	case s.stopping && s.removing:
		return l + "+stopping+removing" // never legal
	case s.stopping:
		return l + "+stopping"
	case s.removing:
		return l + "+removing"
	}
	return l
}

func sandboxStates() map[string]Sandbox {
	out := map[string]Sandbox{}
	for _, base := range []Sandbox{{Pid: 5}, {Pid: 5, StoppedAt: t1.UnixNano()}, {StoppedAt: t1.UnixNano(), NetworkDown: true}} {
		out[sandboxLabel(base)] = base
		st := base
		st.stopping = true
		out[sandboxLabel(st)] = st
		rm := base
		rm.removing = true
		out[sandboxLabel(rm)] = rm
	}
	return out
}

// TestSandboxTransitionMatrix is TestContainerTransitionMatrix for pod
// sandboxes.
func TestSandboxTransitionMatrix(t *testing.T) {
	ops := []struct {
		name string
		do   func(Sandbox) (Sandbox, error)
	}{
		{"MarkStopping", Sandbox.MarkStopping},
		{"EndStop", Sandbox.EndStop},
		{"MarkRemoving", Sandbox.MarkRemoving},
		{"EndRemove", Sandbox.EndRemove},
		{"Stopped", func(s Sandbox) (Sandbox, error) { return s.Stopped(t2) }},
		{"StopFinished", func(s Sandbox) (Sandbox, error) { return s.StopFinished(t2) }},
		{"RequireReady", func(s Sandbox) (Sandbox, error) { return s, s.RequireReady() }},
	}
	want := map[string]map[string]string{
		"READY": {
			"MarkStopping": "READY+stopping", "EndStop": "READY", "MarkRemoving": "READY+removing", "EndRemove": "READY",
			"Stopped": "NOTREADY", "StopFinished": refused, "RequireReady": "READY",
		},
		"READY+stopping": {
			"MarkStopping": refused, "EndStop": "READY", "MarkRemoving": refused, "EndRemove": "READY+stopping",
			"Stopped": "NOTREADY+stopping", "StopFinished": "DOWN+stopping", "RequireReady": refused,
		},
		"READY+removing": {
			"MarkStopping": refused, "EndStop": "READY+removing", "MarkRemoving": refused, "EndRemove": "READY",
			"Stopped": "NOTREADY+removing", "StopFinished": "DOWN+removing", "RequireReady": refused,
		},
		"NOTREADY": {
			"MarkStopping": "NOTREADY+stopping", "EndStop": "NOTREADY", "MarkRemoving": "NOTREADY+removing", "EndRemove": "NOTREADY",
			"Stopped": "NOTREADY", "StopFinished": refused, "RequireReady": refused,
		},
		"NOTREADY+stopping": {
			"MarkStopping": refused, "EndStop": "NOTREADY", "MarkRemoving": refused, "EndRemove": "NOTREADY+stopping",
			"Stopped": "NOTREADY+stopping", "StopFinished": "DOWN+stopping", "RequireReady": refused,
		},
		"NOTREADY+removing": {
			"MarkStopping": refused, "EndStop": "NOTREADY+removing", "MarkRemoving": refused, "EndRemove": "NOTREADY",
			"Stopped": "NOTREADY+removing", "StopFinished": "DOWN+removing", "RequireReady": refused,
		},
		"DOWN": {
			"MarkStopping": "DOWN+stopping", "EndStop": "DOWN", "MarkRemoving": "DOWN+removing", "EndRemove": "DOWN",
			"Stopped": "DOWN", "StopFinished": refused, "RequireReady": refused,
		},
		"DOWN+stopping": {
			"MarkStopping": refused, "EndStop": "DOWN", "MarkRemoving": refused, "EndRemove": "DOWN+stopping",
			"Stopped": "DOWN+stopping", "StopFinished": "DOWN+stopping", "RequireReady": refused,
		},
		"DOWN+removing": {
			"MarkStopping": refused, "EndStop": "DOWN+removing", "MarkRemoving": refused, "EndRemove": "DOWN",
			"Stopped": "DOWN+removing", "StopFinished": "DOWN+removing", "RequireReady": refused,
		},
	}
	states := sandboxStates()
	if len(states) != len(want) {
		t.Fatalf("%d states, %d rows in the table", len(states), len(want))
	}
	for from, st := range states {
		row, ok := want[from]
		if !ok {
			t.Fatalf("no row for %s", from)
		}
		for _, op := range ops {
			t.Run(from+"/"+op.name, func(t *testing.T) {
				exp, ok := row[op.name]
				if !ok {
					t.Fatalf("no cell for %s × %s", from, op.name)
				}
				got, err := op.do(st)
				checkCell(t, exp, sandboxLabel(got), err, got == st)
			})
		}
	}
}

// The first stop time recorded stays.
func TestSandboxStoppedOnce(t *testing.T) {
	s, _ := Sandbox{}.Stopped(t1)
	s, _ = s.Stopped(t2)
	s, _ = s.MarkStopping()
	s, _ = s.StopFinished(t2)
	if s.StoppedAt != t1.UnixNano() || !s.NetworkDown {
		t.Fatalf("status %+v", s)
	}
}

// Old records: a container record written before the `unknown` field was
// dropped still decodes, with its facts; the flag is ignored (it was never
// set), and restore derives the state from the live task: TaskLost when
// there is none.
func TestDecodeOldContainerRecord(t *testing.T) {
	for _, tc := range []struct {
		name      string
		raw       string
		wantState runtimeapi.ContainerState
		wantCode  int32
		lostState runtimeapi.ContainerState // after TaskLost
		lostCode  int32
	}{
		{
			name:      "unknown without an exit",
			raw:       `{"pid":42,"startedAt":100,"exitCode":0,"unknown":true,"resources":"{}"}`,
			wantState: runtimeapi.ContainerState_CONTAINER_RUNNING,
			lostState: runtimeapi.ContainerState_CONTAINER_EXITED, lostCode: LostExitCode,
		},
		{
			name:      "unknown with an exit",
			raw:       `{"pid":42,"startedAt":100,"finishedAt":200,"exitCode":2,"reason":"Error","unknown":true}`,
			wantState: runtimeapi.ContainerState_CONTAINER_EXITED, wantCode: 2,
			lostState: runtimeapi.ContainerState_CONTAINER_EXITED, lostCode: 2,
		},
		{
			name:      "created, unknown false",
			raw:       `{"pid":0,"exitCode":0,"unknown":false}`,
			wantState: runtimeapi.ContainerState_CONTAINER_CREATED,
			lostState: runtimeapi.ContainerState_CONTAINER_EXITED, lostCode: LostExitCode,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Container
			if err := json.Unmarshal([]byte(tc.raw), &c); err != nil {
				t.Fatal(err)
			}
			if c.State() != tc.wantState || c.ExitCode != tc.wantCode || c.Pid != 42 && c.Pid != 0 {
				t.Fatalf("decoded %+v: state %v", c, c.State())
			}
			lost, err := c.TaskLost(t2)
			if err != nil || lost.State() != tc.lostState || lost.ExitCode != tc.lostCode {
				t.Fatalf("after TaskLost: %+v, %v", lost, err)
			}
			// Written back, the record has no unknown field.
			out, err := json.Marshal(lost)
			if err != nil || strings.Contains(string(out), "unknown") {
				t.Fatalf("re-encoded: %s, %v", out, err)
			}
		})
	}
	var s Sandbox
	if err := json.Unmarshal([]byte(`{"pid":9,"stoppedAt":5,"networkDown":true}`), &s); err != nil ||
		s.State() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || !s.NetworkDown || s.Pid != 9 {
		t.Fatalf("sandbox record: %+v, %v", s, err)
	}
}

func TestTransitionErrorNamesTheObject(t *testing.T) {
	err := WithID(Container{StartedAt: 1, FinishedAt: 2}.RequireRunning(), "abc")
	if got, want := err.Error(), "container abc is EXITED, not RUNNING"; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	_, err = Sandbox{removing: true}.MarkStopping()
	if got, want := WithID(err, "p1").Error(), "pod sandbox p1 is READY (being removed), not idle"; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	if WithID(nil, "x") != nil {
		t.Fatal("WithID(nil) is not nil")
	}
}
