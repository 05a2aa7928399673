package ops

import "testing"

func TestMajorFaults(t *testing.T) {
	tests := []struct {
		stat string
		want uint64
		ok   bool
	}{
		{"4242 (otpscope) S 1 4242 4242 0 -1 4194560 81234 0 5678 0 120 30 0 0 20 0 230 0 1234 5 6", 5678, true},
		// A command name with spaces and parentheses of its own.
		{"7 (a b) c)) R 1 7 7 0 -1 0 10 0 99 0 0 0", 99, true},
		{"7 (short) R 1 2", 0, false},
		{"no name at all", 0, false},
	}
	for _, tt := range tests {
		got, err := majorFaults(tt.stat)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("majorFaults(%q) = %d, %v; want %d (ok %v)", tt.stat, got, err, tt.want, tt.ok)
		}
	}
	// This process's own count reads, and never goes back.
	a, err := MajorFaults()
	if err != nil {
		t.Fatalf("MajorFaults: %v", err)
	}
	if b, err := MajorFaults(); err != nil || b < a {
		t.Errorf("MajorFaults again = %d, %v; want at least %d", b, err, a)
	}
}
