package spec

import (
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestMergeArgs(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"cmd1", "cmd2"}}
	tests := []struct {
		name          string
		command, args []string
		img           ImageConfig
		want          []string
	}{
		{"image only", nil, nil, img, []string{"/ep", "cmd1", "cmd2"}},
		{"command drops entrypoint and cmd", []string{"/bin/sh"}, nil, img, []string{"/bin/sh"}},
		{"command and args", []string{"/bin/sh"}, []string{"-c", "x"}, img, []string{"/bin/sh", "-c", "x"}},
		{"args override cmd", nil, []string{"a"}, img, []string{"/ep", "a"}},
		{"args without entrypoint", nil, []string{"/bin/true"}, ImageConfig{Cmd: []string{"x"}}, []string{"/bin/true"}},
		{"cmd without entrypoint", nil, nil, ImageConfig{Cmd: []string{"/bin/true"}}, []string{"/bin/true"}},
		{"nothing", nil, nil, ImageConfig{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeArgs(tc.command, tc.args, tc.img); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWithProcessArgs(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		img     ImageConfig
		wantErr error
	}{
		{"ok", []string{"/bin/true"}, ImageConfig{}, nil},
		{"empty", nil, ImageConfig{}, errInvalid},
		{"nul", []string{"/bin/true\x00x"}, ImageConfig{}, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithProcessArgs(tc.command, nil, tc.img))
			if checkErr(t, err, tc.wantErr) && !slices.Equal(s.Process.Args, tc.command) {
				t.Errorf("args = %q", s.Process.Args)
			}
		})
	}
}

func TestContainerEnv(t *testing.T) {
	cfg := &runtimeapi.ContainerConfig{Envs: []*runtimeapi.KeyValue{
		{Key: "A", Value: []byte("cri")}, {Key: "PATH", Value: []byte("/x")}, {Key: "C", Value: []byte("")},
	}}
	in := ContainerInput{
		Sandbox: SandboxInfo{Config: &runtimeapi.PodSandboxConfig{Hostname: "pod"}},
		Image:   ImageConfig{Env: []string{"A=img", "B=img"}},
	}
	s, err := apply(t, WithEnv(containerEnv(cfg, in)))
	checkErr(t, err, nil)
	want := []string{"PATH=/x", "HOSTNAME=pod", "A=cri", "B=img", "C="}
	if !slices.Equal(s.Process.Env, want) {
		t.Errorf("env = %q, want %q", s.Process.Env, want)
	}
	if _, err := apply(t, WithEnv([]string{"=v"})); !errorsIsInvalid(err) {
		t.Errorf("empty key: err = %v", err)
	}
}

func errorsIsInvalid(err error) bool { return err != nil && checkClass(err, errInvalid) }

func TestWithTTYThenEnv(t *testing.T) {
	s := newSpec("/r")
	checkErr(t, ApplyOpts(s, WithTTY(true), WithEnv([]string{"TERM=vt100"})), nil)
	if !s.Process.Terminal || !slices.Equal(s.Process.Env, []string{"TERM=vt100"}) {
		t.Errorf("terminal %v env %q", s.Process.Terminal, s.Process.Env)
	}
}

func TestWithWorkingDir(t *testing.T) {
	tests := []struct {
		name, cri, img, want string
		wantErr              error
	}{
		{"cri wins", "/work/", "/img", "/work", nil},
		{"image", "", "/img", "/img", nil},
		{"relative image", "", "img", "/img", nil},
		{"default", "", "", "/", nil},
		{"relative cri", "work", "", "", errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithWorkingDir(tc.cri, tc.img))
			if checkErr(t, err, tc.wantErr) && s.Process.Cwd != tc.want {
				t.Errorf("cwd = %q, want %q", s.Process.Cwd, tc.want)
			}
		})
	}
}

func TestAnnotations(t *testing.T) {
	cfg := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: "app"},
		Image:       &runtimeapi.ImageSpec{Image: "busybox"},
		Annotations: map[string]string{"c": "1", "run.oci.keep_original_groups": "1", AnnotationContainerType: "forged"},
	}
	in := ContainerInput{Sandbox: SandboxInfo{ID: "sb1", Config: &runtimeapi.PodSandboxConfig{
		Metadata:    &runtimeapi.PodSandboxMetadata{Name: "pod", Namespace: "ns", Uid: "u"},
		Annotations: map[string]string{"p": "2"},
	}}}
	a := containerAnnotations("c1", cfg, in)
	want := map[string]string{
		"c": "1", "p": "2", AnnotationContainerType: "container", AnnotationSandboxID: "sb1",
		AnnotationSandboxName: "pod", AnnotationSandboxNamespace: "ns", AnnotationSandboxUID: "u",
		AnnotationContainerName: "app", AnnotationImageName: "busybox",
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %q, want %q", k, a[k], v)
		}
	}
	if _, ok := a["run.oci.keep_original_groups"]; ok || len(a) != len(want) {
		t.Errorf("unexpected annotations: %v", a)
	}
}
