package ops

import "testing"

// TestMajorFaults: this process's own count reads, and never goes back.
func TestMajorFaults(t *testing.T) {
	a, err := MajorFaults()
	if err != nil {
		t.Fatalf("MajorFaults: %v", err)
	}
	if b, err := MajorFaults(); err != nil || b < a {
		t.Errorf("MajorFaults again = %d, %v; want at least %d", b, err, a)
	}
}
