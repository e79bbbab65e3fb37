package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFramePayload bounds one Frame's payload; a reader rejects bigger frames
// rather than allocating what a broken peer announces.
const MaxFramePayload = 1 << 20

// ErrFrameTooLarge is returned by ReadFrame for a payload over MaxFramePayload.
var ErrFrameTooLarge = errors.New("frame payload too large")

// WriteFrame writes one Frame: stream byte, 4-byte big-endian length, payload.
// It issues a single Write so that concurrent writers serialised by a mutex
// never interleave a header with another frame's payload.
func WriteFrame(w io.Writer, s Stream, payload []byte) error {
	if len(payload) > MaxFramePayload {
		return fmt.Errorf("write frame of %d bytes: %w", len(payload), ErrFrameTooLarge)
	}
	buf := make([]byte, 5+len(payload))
	buf[0] = byte(s)
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(payload)))
	copy(buf[5:], payload)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one Frame. It returns io.EOF only when the stream ended
// cleanly between frames, io.ErrUnexpectedEOF when it ended inside one.
func ReadFrame(r io.Reader) (Stream, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:5])
	if n > MaxFramePayload {
		return 0, nil, fmt.Errorf("read frame of %d bytes: %w", n, ErrFrameTooLarge)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return Stream(hdr[0]), payload, nil
}
