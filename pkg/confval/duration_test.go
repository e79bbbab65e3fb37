package confval

import (
	"testing"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"5m", 5 * time.Minute, false},
		{"500ms", 500 * time.Millisecond, false},
		{"0", 0, false},
		{"5", 0, true}, // bare numbers are refused: seconds or nanoseconds?
		{"soon", 0, true},
	} {
		var d Duration
		err := d.UnmarshalText([]byte(tc.in))
		if tc.wantErr {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("%q: %v, want an InvalidArgument error", tc.in, err)
			}
			continue
		}
		if err != nil || time.Duration(d) != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.in, time.Duration(d), err, tc.want)
		}
		out, _ := d.MarshalText()
		var again Duration
		if err := again.UnmarshalText(out); err != nil || again != d {
			t.Errorf("%q: round trip through %q gave %v, %v", tc.in, out, again, err)
		}
	}
}
