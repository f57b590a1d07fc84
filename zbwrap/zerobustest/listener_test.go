package zerobustest

import (
	"errors"
	"testing"
)

func TestReadBufferFor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rmemMax string
		err     error
		want    int
	}{
		{"allowed", "4194304\n", nil, 4 << 20},
		{"larger limit", "33554432", nil, 4 << 20},
		{"limit too small", "212992\n", nil, 0},
		{"no such file", "", errors.New("not Linux"), 0},
		{"garbage", "lots", nil, 0},
	} {
		if got := readBufferFor(4<<20, []byte(tc.rmemMax), tc.err); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
