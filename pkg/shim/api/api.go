// Package api holds the wire types of the shim's task API: what the daemon
// (pkg/shim/client) sends to a shim (pkg/shim/service) over the shim's unix
// socket. It speaks OCI/runc: bundle, spec, init, exec process.
//
// # Wire protocol
//
// Every call opens its own connection to the shim's socket. The client writes
// one JSON Request line; the shim answers with one JSON Response line and, for
// every method but Attach, closes the connection. Long calls (Wait) simply
// keep their connection open until they have an answer, so a dead shim shows
// up as EOF on every call in flight.
//
// Attach turns its connection into a stream after the Response line: both
// sides then exchange Frames (1 byte stream, 4 bytes big-endian length,
// payload). The client sends StreamStdin frames (and one StreamStdinClose to
// close the process's stdin); the shim sends StreamStdout/StreamStderr frames
// and closes the connection when the process's output has ended.
//
// Errors travel as (class, message): errdefs.ClassName and errdefs.FromWire
// keep the errdefs class across the wire.
package api

import (
	"encoding/json"
	"time"
)

// Methods of the task API.
const (
	MethodConnect    = "Connect"
	MethodCreate     = "Create"
	MethodStart      = "Start"
	MethodExec       = "Exec"
	MethodKill       = "Kill"
	MethodDelete     = "Delete"
	MethodState      = "State"
	MethodPids       = "Pids"
	MethodResizePty  = "ResizePty"
	MethodCloseStdin = "CloseStdin"
	MethodWait       = "Wait"
	MethodUpdate     = "Update"
	MethodReopenLog  = "ReopenLog"
	MethodAttach     = "Attach"
	MethodShutdown   = "Shutdown"
)

// Request is one call: the method and its parameters (one of the *Request
// types below, or nothing).
type Request struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

// Response is the answer to one call: Result (one of the *Response types, or
// nothing) or Error.
type Response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Error is an error on the wire: the errdefs class name ("" when the error
// has none) and the message.
type Error struct {
	Class   string `json:"class,omitempty"`
	Message string `json:"message"`
}

// Status is the lifecycle state of one process (init or exec) in the shim.
//
//	created ──start──► running ──exit──► stopped ──delete──► deleted
//	   │                                                        ▲
//	   └──────────────────────── delete ────────────────────────┘
type Status string

// The process states.
const (
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusStopped Status = "stopped"
	StatusDeleted Status = "deleted"
)

// Mount is a filesystem mount the shim makes before `runc create`: the
// rootfs mounts go, in order, onto <bundle>/rootfs (Target empty), and are
// unmounted by Delete of the init process.
type Mount struct {
	Type    string   `json:"type"`
	Source  string   `json:"source"`
	Target  string   `json:"target,omitempty"`
	Options []string `json:"options,omitempty"`
}

// IO says how a process's stdio is wired.
//
// Stdout and stderr always go through the shim: into LogPath in the CRI log
// format (<RFC3339Nano> <stdout|stderr> <P|F> <line>) when it is set, and to
// every attached client. With Terminal the process gets a pty whose master the
// shim holds (runc's console socket); its output is the stdout stream.
// With Stdin the process gets a stdin pipe that attached clients write to;
// StdinOnce closes it when the first client that attached with stdin detaches.
type IO struct {
	Terminal  bool   `json:"terminal,omitempty"`
	Stdin     bool   `json:"stdin,omitempty"`
	StdinOnce bool   `json:"stdinOnce,omitempty"`
	LogPath   string `json:"logPath,omitempty"`
}

// ConnectResponse identifies a live shim and its task.
type ConnectResponse struct {
	ShimPid int `json:"shimPid"`
	// TaskPid is the init process's pid, 0 before Create.
	TaskPid int `json:"taskPid"`
}

// CreateRequest creates the init process (`runc create`). The bundle holds
// config.json; Rootfs, when given, is mounted at <bundle>/rootfs first.
type CreateRequest struct {
	ID     string  `json:"id"`
	Bundle string  `json:"bundle"`
	Rootfs []Mount `json:"rootfs,omitempty"`
	IO     IO      `json:"io"`
}

// CreateResponse carries the init's pid.
type CreateResponse struct {
	Pid int `json:"pid"`
}

// ExecRequest registers an extra process in the task (created state); Start
// with its ExecID runs it (`runc exec`). Spec is a JSON specs.Process.
type ExecRequest struct {
	ExecID string          `json:"execID"`
	Spec   json.RawMessage `json:"spec"`
	IO     IO              `json:"io"`
}

// ProcessRequest names a process of the task: ExecID "" is the init.
type ProcessRequest struct {
	ExecID string `json:"execID,omitempty"`
}

// StartResponse carries the started process's pid.
type StartResponse struct {
	Pid int `json:"pid"`
}

// KillRequest signals a process; All signals every process of the container
// (`runc kill --all`, init only).
type KillRequest struct {
	ExecID string `json:"execID,omitempty"`
	Signal uint32 `json:"signal"`
	All    bool   `json:"all,omitempty"`
}

// Exit is how a process ended. The shim records the init's Exit in the bundle
// (exit.json) before it answers any Wait with it.
type Exit struct {
	Pid       int       `json:"pid"`
	Status    int       `json:"status"` // exit code, or 128+signal
	ExitedAt  time.Time `json:"exitedAt"`
	OOMKilled bool      `json:"oomKilled,omitempty"`
}

// StateResponse is the state of one process.
type StateResponse struct {
	ID       string `json:"id"`
	ExecID   string `json:"execID,omitempty"`
	Bundle   string `json:"bundle"`
	Pid      int    `json:"pid"`
	Status   Status `json:"status"`
	Terminal bool   `json:"terminal,omitempty"`
	Stdin    bool   `json:"stdin,omitempty"`
	// Exit is set once the process has stopped.
	Exit *Exit `json:"exit,omitempty"`
}

// PidsResponse lists the pids of every process in the container.
type PidsResponse struct {
	Pids []int `json:"pids"`
}

// ResizePtyRequest resizes a process's pty.
type ResizePtyRequest struct {
	ExecID string `json:"execID,omitempty"`
	Width  uint32 `json:"width"`
	Height uint32 `json:"height"`
}

// UpdateRequest updates the container's resources: Resources is a JSON
// specs.LinuxResources (`runc update`).
type UpdateRequest struct {
	Resources json.RawMessage `json:"resources"`
}

// AttachRequest attaches to a process's stdio; after the response the
// connection carries Frames. A process can be attached to while created, so
// that no output of an exec is lost.
type AttachRequest struct {
	ExecID string `json:"execID,omitempty"`
	Stdin  bool   `json:"stdin,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
}

// Stream identifies the stream of a Frame.
type Stream byte

// Frame streams.
const (
	StreamStdin      Stream = 0
	StreamStdout     Stream = 1
	StreamStderr     Stream = 2
	StreamStdinClose Stream = 3
)

// Files in a bundle that the shim writes and the daemon reads at restore.
const (
	// ExitFile holds the init's Exit as JSON, written atomically before the
	// exit is reported to anyone.
	ExitFile = "exit.json"
	// InitPidFile holds the init's pid (runc's --pid-file).
	InitPidFile = "init.pid"
	// ShimLogFile receives the shim's own stderr.
	ShimLogFile = "shim.log"
	// RootfsDir is where the rootfs is mounted.
	RootfsDir = "rootfs"
)
