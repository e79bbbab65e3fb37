package api

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stream  Stream
		payload []byte
	}{
		{"stdin", StreamStdin, []byte("hello\n")},
		{"stdout empty", StreamStdout, []byte{}},
		{"stderr binary", StreamStderr, []byte{0, 1, 2, 255}},
		{"stdin close", StreamStdinClose, nil},
		{"max", StreamStdout, bytes.Repeat([]byte("x"), MaxFramePayload)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteFrame(&buf, tc.stream, tc.payload); err != nil {
				t.Fatal(err)
			}
			if buf.Len() != 5+len(tc.payload) {
				t.Fatalf("encoded %d bytes, want %d", buf.Len(), 5+len(tc.payload))
			}
			s, p, err := ReadFrame(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if s != tc.stream || !bytes.Equal(p, tc.payload) {
				t.Fatalf("got (%d, %d bytes), want (%d, %d bytes)", s, len(p), tc.stream, len(tc.payload))
			}
			if _, _, err := ReadFrame(&buf); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last frame: %v, want EOF", err)
			}
		})
	}
}

func TestFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty", nil, io.EOF},
		{"short header", []byte{1, 0, 0}, io.ErrUnexpectedEOF},
		{"short payload", []byte{1, 0, 0, 0, 4, 'a', 'b'}, io.ErrUnexpectedEOF},
		{"too large", []byte{1, 0xff, 0xff, 0xff, 0xff}, ErrFrameTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ReadFrame(bytes.NewReader(tc.input)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if err := WriteFrame(io.Discard, StreamStdout, make([]byte, MaxFramePayload+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("write oversize: %v", err)
	}
}
