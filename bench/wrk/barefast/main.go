// Command barefast is bench/wrk/run.sh's second HTTP baseline: a fasthttp
// server whose one handler takes the body and answers 200, the most the
// public listener's own server (internal/ingest.NewServer) can answer on
// this machine. bare, on net/http, is the baseline; this one shows
// what is left of the HTTP exchange's cost under fasthttp.
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18091", "HTTP address")
	flag.Parse()
	log.Fatal(fasthttp.ListenAndServe(*listen, func(ctx *fasthttp.RequestCtx) {
		_ = ctx.PostBody()
		ctx.SetStatusCode(fasthttp.StatusOK)
	}))
}
