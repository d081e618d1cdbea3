package signaldump

import (
	"io"
	"testing"
)

func TestHold(t *testing.T) {
	dump := func(io.Writer) {}
	r1 := Hold(dump)
	r2 := Hold(dump)
	r1()
	r1() // a second release of the same hold does nothing
	handler.mu.Lock()
	holders := handler.holders
	handler.mu.Unlock()
	if holders != 1 {
		t.Fatalf("holders = %d after one of two released (twice), want 1", holders)
	}
	r2()
	handler.mu.Lock()
	defer handler.mu.Unlock()
	if handler.holders != 0 || handler.stop != nil {
		t.Fatalf("handler still running after every hold was released")
	}
}
