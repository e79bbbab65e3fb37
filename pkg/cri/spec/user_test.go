package spec

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# comment
daemon:x:1:1::/:/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
broken line
nogrp:x:2000:2000::/:/bin/sh
`

const testGroup = `root:x:0:
wheel:x:10:root,app
app:x:1000:
audio:x:29:app
extra:x:50000:nogrp
`

func testRootfs(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
	return dir
}

func TestResolveUserString(t *testing.T) {
	db := &userDB{passwd: parsePasswd(testPasswd), groups: parseGroup(testGroup)}
	tests := []struct {
		user     string
		uid, gid uint32
		name     string
		wantErr  error
	}{
		{"0", 0, 0, "root", nil},
		{"app", 1000, 1000, "app", nil},
		{"1000", 1000, 1000, "app", nil},
		{"4242", 4242, 0, "", nil},
		{"app:29", 1000, 29, "app", nil},
		{"app:wheel", 1000, 10, "app", nil},
		{"4242:4343", 4242, 4343, "", nil},
		{"nobody", 0, 0, "", errInvalid},
		{"app:nogroup", 0, 0, "", errInvalid},
		{":10", 0, 0, "", errInvalid},
		{"app:", 0, 0, "", errInvalid},
		{"99999999999", 0, 0, "", errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			uid, gid, name, err := db.resolve(tc.user)
			if checkErr(t, err, tc.wantErr) && (uid != tc.uid || gid != tc.gid || name != tc.name) {
				t.Errorf("got %d:%d %q, want %d:%d %q", uid, gid, name, tc.uid, tc.gid, tc.name)
			}
		})
	}
}

func i64(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }

func TestWithContainerUser(t *testing.T) {
	rootfs := testRootfs(t)
	tests := []struct {
		name      string
		sc        *runtimeapi.LinuxContainerSecurityContext
		imageUser string
		want      specs.User
		wantErr   error
	}{
		{"default root", nil, "", specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10}}, nil},
		{"image name", nil, "app", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10, 29}}, nil},
		{"image uid:gid keeps memberships", nil, "1000:5", specs.User{UID: 1000, GID: 5, AdditionalGids: []uint32{5, 10, 29}}, nil},
		{"run_as_user overrides image", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(2000)}, "app",
			specs.User{UID: 2000, GID: 2000, AdditionalGids: []uint32{2000, 50000}}, nil},
		{"run_as_user and group with supplemental (k8s blog example)", &runtimeapi.LinuxContainerSecurityContext{
			RunAsUser: i64(2000), RunAsGroup: i64(3000), SupplementalGroups: []int64{4000}}, "",
			specs.User{UID: 2000, GID: 3000, AdditionalGids: []uint32{3000, 50000, 4000}}, nil},
		{"strict ignores /etc/group", &runtimeapi.LinuxContainerSecurityContext{
			RunAsUser: i64(2000), RunAsGroup: i64(3000), SupplementalGroups: []int64{4000, 3000},
			SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict}, "",
			specs.User{UID: 2000, GID: 3000, AdditionalGids: []uint32{3000, 4000}}, nil},
		{"run_as_username", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "app"}, "0",
			specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10, 29}}, nil},
		{"unknown username", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "ghost"}, "", specs.User{}, errInvalid},
		{"unknown image user", nil, "ghost", specs.User{}, errInvalid},
		{"group without user", &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: i64(1)}, "app", specs.User{}, errInvalid},
		{"uid and username", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1), RunAsUsername: "app"}, "", specs.User{}, errInvalid},
		{"negative uid", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(-1)}, "", specs.User{}, errInvalid},
		{"negative group", &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{-5}}, "", specs.User{}, errInvalid},
		{"unknown policy", &runtimeapi.LinuxContainerSecurityContext{SupplementalGroupsPolicy: 7}, "", specs.User{}, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithContainerUser(rootfs, tc.sc, tc.imageUser))
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			got := s.Process.User
			if got.UID != tc.want.UID || got.GID != tc.want.GID || !slices.Equal(got.AdditionalGids, tc.want.AdditionalGids) {
				t.Errorf("user = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestUserFilesDoNotEscapeRootfs: a symlinked /etc/passwd (absolute or
// relative, pointing outside) is resolved inside the rootfs, never out.
func TestUserFilesDoNotEscapeRootfs(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"passwd": "evil:x:4242:4242::/:/bin/sh\n"})
	for _, target := range []string{
		filepath.Join(outside, "passwd"),                 // absolute: re-rooted
		"../../../../../../../../" + outside + "/passwd", // relative: ".." stops at the rootfs
	} {
		t.Run(target, func(t *testing.T) {
			rootfs := t.TempDir()
			writeFiles(t, rootfs, map[string]string{"etc/group": testGroup})
			if err := os.Symlink(target, filepath.Join(rootfs, "etc/passwd")); err != nil {
				t.Fatal(err)
			}
			if _, err := apply(t, WithContainerUser(rootfs, nil, "evil")); !checkClass(err, errInvalid) {
				t.Fatalf("user from outside the rootfs resolved: err = %v", err)
			}
			// Numeric users still work without a passwd file.
			s, err := apply(t, WithContainerUser(rootfs, nil, "4242"))
			checkErr(t, err, nil)
			if s.Process.User.GID != 0 {
				t.Errorf("gid = %d, want 0 (no passwd entry)", s.Process.User.GID)
			}
		})
	}
}

func TestReadRootFileSymlinksInside(t *testing.T) {
	rootfs := t.TempDir()
	writeFiles(t, rootfs, map[string]string{"usr/share/passwd": testPasswd})
	if err := os.Symlink("/usr/share/passwd", filepath.Join(rootfs, "passwd-abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../passwd-abs", filepath.Join(rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	data, err := readRootFile(rootfs, "/etc/passwd")
	if err != nil || string(data) != testPasswd {
		t.Fatalf("read = %q, %v", data, err)
	}
	if err := os.Symlink("loop", filepath.Join(rootfs, "loop")); err != nil {
		t.Fatal(err)
	}
	if _, err := readRootFile(rootfs, "/loop"); !checkClass(err, errInvalid) {
		t.Errorf("loop: err = %v", err)
	}
	if err := syscall.Mkfifo(filepath.Join(rootfs, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readRootFile(rootfs, "/fifo"); !checkClass(err, errInvalid) {
		t.Errorf("fifo: err = %v", err)
	}
	if _, err := readRootFile(filepath.Join(rootfs, "missing"), "/etc/passwd"); !checkClass(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("missing rootfs: err = %v", err)
	}
}

func TestWithSandboxUser(t *testing.T) {
	s, err := apply(t, WithSandboxUser("", &runtimeapi.LinuxSandboxSecurityContext{RunAsUser: i64(65535), RunAsGroup: i64(65535)}))
	checkErr(t, err, nil)
	if u := s.Process.User; u.UID != 65535 || u.GID != 65535 {
		t.Errorf("user = %+v", u)
	}
	_, err = apply(t, WithSandboxUser("", &runtimeapi.LinuxSandboxSecurityContext{RunAsGroup: i64(1)}))
	checkErr(t, err, errInvalid)
}

func TestMissingRootfsIsNotAnEmptyPasswd(t *testing.T) {
	_, err := apply(t, WithContainerUser(filepath.Join(t.TempDir(), "gone"), nil, "1000"))
	checkErr(t, err, errdefs.ErrFailedPrecondition)
}
