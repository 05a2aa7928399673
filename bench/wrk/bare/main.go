// Command bare is the first baseline of bench/wrk/run.sh: a net/http server
// whose one handler reads the body and answers 200, the most any Go HTTP
// service can answer on this machine.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18090", "HTTP address")
	flag.Parse()
	log.Fatal(http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})))
}
