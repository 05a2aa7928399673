// Command healthcheck GETs a URL and exits 0 when the answer is 2xx, 1
// otherwise. The container image is distroless (no shell, no curl), so the
// compose healthchecks run this:
//
//	healthcheck http://127.0.0.1:8080/readyz
//
// An https URL to a loopback address (a process serving --tls-cert-file)
// is checked without verifying the certificate, which names the public
// host, not 127.0.0.1: the check talks to its own container.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: healthcheck URL")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 2
	}
	client := http.DefaultClient
	if ip := net.ParseIP(req.URL.Hostname()); req.URL.Scheme == "https" && (ip.IsLoopback() || req.URL.Hostname() == "localhost") {
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(os.Stderr, "healthcheck: %s answered %s\n", args[0], resp.Status)
		return 1
	}
	return 0
}
