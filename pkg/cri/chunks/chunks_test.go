package chunks

import (
	"errors"
	"testing"
)

func TestSend(t *testing.T) {
	for _, n := range []int{0, 1, Size - 1, Size, Size + 1, 3*Size + 7} {
		items := make([]int, n)
		for i := range items {
			items[i] = i
		}
		var got []int
		msgs := 0
		err := Send(items, func(c []int) *[]int { return &c }, func(m *[]int) error {
			if len(*m) == 0 || len(*m) > Size {
				t.Fatalf("n=%d: a message of %d items", n, len(*m))
			}
			msgs++
			got = append(got, *m...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n || msgs != (n+Size-1)/Size {
			t.Fatalf("n=%d: got %d items in %d messages", n, len(got), msgs)
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("n=%d: item %d is %d: every item once, in order", n, i, v)
			}
		}
	}
	fail := errors.New("client gone")
	if err := Send([]int{1}, func(c []int) *[]int { return &c }, func(*[]int) error { return fail }); !errors.Is(err, fail) {
		t.Fatalf("send error: %v", err)
	}
}
