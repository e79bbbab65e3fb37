package host

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

const testMountInfo = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
43 27 254:0 /run/netns /run/netns rw,relatime shared:2 - ext4 /dev/vda rw
50 27 254:0 /srv/shared /srv/shared rw,relatime shared:7 - ext4 /dev/vda rw
51 27 254:0 /srv/slave /srv/slave rw,relatime master:7 - ext4 /dev/vda rw
52 27 254:0 /srv/both /srv/both rw,relatime shared:9 master:7 - ext4 /dev/vda rw
53 50 0:40 / /srv/shared/private rw,relatime - tmpfs tmpfs rw
54 27 254:0 /srv/stack /srv/stack rw,relatime shared:11 - ext4 /dev/vda rw
55 54 254:0 /srv/stack /srv/stack rw,relatime - ext4 /dev/vda rw
56 27 254:0 /a\040b /a\040b rw,relatime shared:12 - ext4 /dev/vda rw
`

func TestParseMountInfo(t *testing.T) {
	mounts, err := parseMountInfo(testMountInfo)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 10 {
		t.Fatalf("got %d mounts", len(mounts))
	}
	if m := mounts[9]; m.mountPoint != "/a b" || !m.shared {
		t.Errorf("escaped mount = %+v", m)
	}
	if m := mounts[5]; !m.shared || !m.slave {
		t.Errorf("shared and slave mount = %+v", m)
	}
	for _, bad := range []string{"1 2 3", "22 27 0:21 / /proc rw,relatime proc proc rw"} {
		if _, err := parseMountInfo(bad); !errdefs.IsInternal(err) {
			t.Errorf("parseMountInfo(%q) = %v, want Internal", bad, err)
		}
	}
}

func TestCheckPropagationSource(t *testing.T) {
	mounts, err := parseMountInfo(testMountInfo)
	if err != nil {
		t.Fatal(err)
	}
	const (
		bidi = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
		h2c  = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
		priv = runtimeapi.MountPropagation_PROPAGATION_PRIVATE
	)
	tests := []struct {
		name    string
		path    string
		prop    runtimeapi.MountPropagation
		wantErr bool
	}{
		{"private needs nothing", "/var/lib/x", priv, false},
		{"bidirectional on the private root", "/var/lib/x", bidi, true},
		{"host-to-container on the private root", "/var/lib/x", h2c, true},
		{"bidirectional on a shared mount point", "/srv/shared", bidi, false},
		{"bidirectional below a shared mount", "/srv/shared/dir/file", bidi, false},
		{"not a prefix by string only", "/srv/sharedx", bidi, true},
		{"private submount of a shared mount", "/srv/shared/private/x", bidi, true},
		{"bidirectional on a slave", "/srv/slave/x", bidi, true},
		{"host-to-container on a slave", "/srv/slave/x", h2c, false},
		{"host-to-container on shared", "/srv/shared", h2c, false},
		{"shared and slave", "/srv/both", bidi, false},
		{"top of a stack wins", "/srv/stack/x", bidi, true},
		{"escaped mount point", "/a b/c", bidi, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPropagationSource(mounts, "config.mounts[0].host_path", tc.path, tc.prop)
			if tc.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errdefs.IsFailedPrecondition(err) {
				t.Fatalf("err = %v, want FailedPrecondition", err)
			}
		})
	}
}
