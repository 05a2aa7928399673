package chdb

import (
	"fmt"
	"testing"
)

func TestScratch2(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadLibrary(""); err != nil { t.Fatal(err) }
	rw, _, err := connect([]string{"--path=" + dir})
	if err != nil { t.Fatal(err) }
	ro, _, err := connect([]string{"--path=" + dir, "--readonly=1"})
	if err != nil { t.Fatal(err) }
	for _, s := range []string{"SELECT * FROM file('/etc/passwd', 'LineAsString') LIMIT 1", "SELECT * FROM numbers(2)", "SELECT count() FROM system.numbers LIMIT 1", "SET max_threads=1", "SELECT * FROM url('http://127.0.0.1:1/x', 'TSV', 'a String')", "SELECT 1 SETTINGS max_threads=1"} {
		r := ro.query(s, "TSV", nil)
		fmt.Printf("ro1 %q -> %q %q\n", s, r.data, r.errorMessage)
	}
	r := rw.query("SELECT * FROM executable('x', 'TSV', 'a String')", "TSV", nil)
	fmt.Printf("%q %q\n", r.data, r.errorMessage)
	ro.close(); rw.close()
}
