package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mknod, chown, trusted.* xattrs, overlay mounts)")
	}
}

type entry struct {
	hdr  tar.Header
	body string
}

func file(name, body string) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body}
}
func dirEntry(name string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}
func symlinkEntry(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}
func hardlinkEntry(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if h.Format == tar.FormatUnknown && len(h.PAXRecords) > 0 {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is a layer dir next to an "outside" dir holding a secret; check
// asserts that the outside is exactly as it was.
type sandbox struct {
	layer, outside string
}

func newSandbox(t *testing.T) sandbox {
	base := t.TempDir()
	sb := sandbox{layer: filepath.Join(base, "layer"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{sb.layer, sb.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sb.outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	return sb
}

func (sb sandbox) check(t *testing.T) {
	t.Helper()
	ents, _ := os.ReadDir(sb.outside)
	if len(ents) != 1 || ents[0].Name() != "secret" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("outside dir changed: %v", names)
	}
	b, _ := os.ReadFile(filepath.Join(sb.outside, "secret"))
	var st unix.Stat_t
	unix.Stat(filepath.Join(sb.outside, "secret"), &st)
	if string(b) != "secret" || st.Nlink != 1 {
		t.Fatalf("outside secret changed: %q nlink %d", b, st.Nlink)
	}
	base := filepath.Dir(sb.layer)
	ents, _ = os.ReadDir(base)
	if len(ents) != 2 {
		t.Fatalf("something was written next to the layer: %d entries in %s", len(ents), base)
	}
}

func unpackBytes(t *testing.T, dir string, data []byte, max int64) (unpackStats, error) {
	t.Helper()
	if max == 0 {
		max = 1 << 30
	}
	return unpackTar(context.Background(), dir, bytes.NewReader(data), unpackOptions{maxEntrySize: max, maxInodes: 1 << 20})
}

func TestUnpackHostile(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name    string
		entries func(sb sandbox) []entry
		max     int64
		raw     func(t *testing.T, sb sandbox) []byte // instead of entries
		wantErr string
	}{
		{name: "dotdot", entries: func(sandbox) []entry { return []entry{file("../outside/pwned", "x")} }, wantErr: `".."`},
		{name: "dotdot inside", entries: func(sandbox) []entry { return []entry{file("a/../../outside/pwned", "x")} }, wantErr: `".."`},
		{name: "absolute", entries: func(sb sandbox) []entry { return []entry{file(sb.outside+"/pwned", "x")} }, wantErr: "absolute"},
		{name: "through absolute symlink", entries: func(sb sandbox) []entry {
			return []entry{symlinkEntry("evil", sb.outside), file("evil/pwned", "x")}
		}, wantErr: "symlink"},
		{name: "through relative symlink", entries: func(sandbox) []entry {
			return []entry{symlinkEntry("evil", "../outside"), file("evil/pwned", "x")}
		}, wantErr: "symlink"},
		{name: "dir through symlink", entries: func(sb sandbox) []entry {
			return []entry{symlinkEntry("evil", sb.outside), dirEntry("evil/sub/")}
		}, wantErr: "symlink"},
		{name: "whiteout through symlink", entries: func(sb sandbox) []entry {
			return []entry{symlinkEntry("evil", sb.outside), file("evil/.wh.secret", "")}
		}, wantErr: "symlink"},
		{name: "opaque through symlink", entries: func(sb sandbox) []entry {
			return []entry{symlinkEntry("evil", sb.outside), file("evil/.wh..wh..opq", "")}
		}, wantErr: "symlink"},
		{name: "hardlink out by dotdot", entries: func(sandbox) []entry {
			return []entry{hardlinkEntry("h", "../outside/secret")}
		}, wantErr: `".."`},
		{name: "hardlink absolute", entries: func(sb sandbox) []entry {
			return []entry{hardlinkEntry("h", sb.outside+"/secret")}
		}, wantErr: "absolute"},
		{name: "hardlink through symlink", entries: func(sb sandbox) []entry {
			return []entry{symlinkEntry("evil", sb.outside), hardlinkEntry("h", "evil/secret")}
		}, wantErr: "symlink"},
		{name: "hardlink to absent", entries: func(sandbox) []entry {
			return []entry{hardlinkEntry("h", "nosuch")}
		}, wantErr: "not in the layer"},
		{name: "size above limit", max: 10, entries: func(sandbox) []entry {
			return []entry{file("big", strings.Repeat("x", 11))}
		}, wantErr: "max_entry_size"},
		{name: "stream shorter than header", raw: func(t *testing.T, sb sandbox) []byte {
			b := tarOf(t, file("f", strings.Repeat("x", 4096)))
			return b[:512+100] // header plus 100 bytes of a 4096-byte file
		}, wantErr: "unexpected EOF"},
		{name: "garbage after entry", raw: func(t *testing.T, sb sandbox) []byte {
			b := tarOf(t, file("f", "x"))
			return append(b[:1024], bytes.Repeat([]byte("garbage!"), 128)...)
		}, wantErr: "read layer tar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := newSandbox(t)
			var data []byte
			if tc.raw != nil {
				data = tc.raw(t, sb)
			} else {
				data = tarOf(t, tc.entries(sb)...)
			}
			_, err := unpackBytes(t, sb.layer, data, tc.max)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
			if strings.Contains(tc.wantErr, "symlink") || tc.wantErr == `".."` || tc.wantErr == "absolute" || tc.wantErr == "max_entry_size" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("err %v is not InvalidArgument", err)
				}
			}
			sb.check(t)
		})
	}
}

// A symlink replaced by a file in the same layer: the file must replace
// the link, not be written through it.
func TestUnpackNeverFollowsFinalSymlink(t *testing.T) {
	requireRoot(t)
	sb := newSandbox(t)
	data := tarOf(t,
		symlinkEntry("a", filepath.Join(sb.outside, "secret")),
		file("a", "mine"),
		symlinkEntry("b", filepath.Join(sb.outside, "secret")),
		hardlinkEntry("c", "b"), // links the symlink itself
		symlinkEntry("d", sb.outside),
		dirEntry("d/"), // replaces the link by a directory
	)
	if _, err := unpackBytes(t, sb.layer, data, 0); err != nil {
		t.Fatal(err)
	}
	sb.check(t)
	if b, _ := os.ReadFile(filepath.Join(sb.layer, "a")); string(b) != "mine" {
		t.Errorf("a = %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(sb.layer, "c")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("c should be a link to the symlink b: %v %v", fi, err)
	}
	if fi, err := os.Lstat(filepath.Join(sb.layer, "d")); err != nil || !fi.IsDir() {
		t.Errorf("d should be a directory: %v %v", fi, err)
	}
}

func TestUnpackMetadataAndWhiteouts(t *testing.T) {
	requireRoot(t)
	sb := newSandbox(t)
	mtime := time.Unix(1600000000, 0)
	suid := file("bin/suid", "#!")
	suid.hdr.Mode = 0o4755
	suid.hdr.Uid, suid.hdr.Gid = 1000, 1001
	suid.hdr.ModTime = mtime
	suid.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.note":                "hello",
		"SCHILY.xattr.trusted.overlay.redirect": "/etc", // never taken from a tar
	}
	owned := dirEntry("home/u/")
	owned.hdr.Uid, owned.hdr.Gid, owned.hdr.Mode, owned.hdr.ModTime = 1000, 1000, 0o700, mtime
	dev := entry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}}
	fifo := entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}}
	data := tarOf(t,
		dirEntry("./"),
		dirEntry("bin/"), suid,
		hardlinkEntry("bin/suid2", "bin/suid"),
		symlinkEntry("bin/sh", "/bin/busybox"),
		owned, file("home/u/.profile", "x"),
		dev, fifo,
		file("etc/.wh.gone", ""),
		file("opq/.wh..wh..opq", ""),
		file("opq/new", "new"),
		file("deep/er/file", "implied parents"),
	)
	stats, err := unpackBytes(t, sb.layer, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	sb.check(t)
	L := func(p string) string { return filepath.Join(sb.layer, p) }
	var st unix.Stat_t
	if err := unix.Lstat(L("bin/suid"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o4755 || st.Uid != 1000 || st.Gid != 1001 || st.Nlink != 2 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("bin/suid: mode %o uid %d gid %d nlink %d mtime %d", st.Mode&0o7777, st.Uid, st.Gid, st.Nlink, st.Mtim.Sec)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(L("bin/suid"), "user.note", buf); err != nil || string(buf[:n]) != "hello" {
		t.Errorf("user.note xattr: %q %v", buf[:max(n, 0)], err)
	}
	if _, err := unix.Lgetxattr(L("bin/suid"), "trusted.overlay.redirect", buf); err == nil {
		t.Error("trusted.overlay.redirect was taken from the tar")
	}
	if l, _ := os.Readlink(L("bin/sh")); l != "/bin/busybox" {
		t.Errorf("bin/sh -> %q", l)
	}
	unix.Lstat(L("home/u"), &st)
	if st.Mode&0o7777 != 0o700 || st.Uid != 1000 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("home/u: mode %o uid %d mtime %d (dir mtime must survive its children)", st.Mode&0o7777, st.Uid, st.Mtim.Sec)
	}
	unix.Lstat(L("dev/null"), &st)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null: mode %o rdev %d", st.Mode, st.Rdev)
	}
	unix.Lstat(L("run/fifo"), &st)
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("run/fifo: mode %o", st.Mode)
	}
	unix.Lstat(L("etc/gone"), &st)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("etc/gone is not a whiteout: mode %o rdev %d", st.Mode, st.Rdev)
	}
	if _, err := os.Lstat(L("etc/.wh.gone")); !os.IsNotExist(err) {
		t.Error(".wh.gone was written as a file")
	}
	if n, err := unix.Lgetxattr(L("opq"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opq is not opaque: %v", err)
	}
	if b, _ := os.ReadFile(L("deep/er/file")); string(b) != "implied parents" {
		t.Errorf("deep/er/file = %q", b)
	}
	if stats.Bytes != int64(len("#!")+len("x")+len("new")+len("implied parents")) || stats.Inodes == 0 {
		t.Errorf("stats = %+v", stats)
	}
}

func TestCleanName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "./", want: ""},
		{in: ".", want: ""},
		{in: "./etc/passwd", want: "etc/passwd"},
		{in: "a//b/", want: "a/b"},
		{in: "a/./b", want: "a/b"},
		{in: "/etc", bad: true},
		{in: "..", bad: true},
		{in: "a/..", bad: true},
		{in: "a/../b", bad: true},
	} {
		got, err := cleanName(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("cleanName(%q) = %q, %v", tc.in, got, err)
		}
	}
}
