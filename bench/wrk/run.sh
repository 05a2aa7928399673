#!/usr/bin/env bash
# bench/wrk/run.sh: the ingest table of bench/README.md, measured with wrk from a
# second process, every baseline in the same run as what it is compared with.
#
#   bench/wrk/run.sh                      # 3 runs, medians; ~5 minutes on 2 cores
#   RUNS=1 SYNCS=always bench/wrk/run.sh  # one quick look
#   PROFILE=/tmp/prof bench/wrk/run.sh    # also CPU profiles of ingest (cmd/ingest's code, bench/wrk/ingestprof)
#   OLD_INGEST=/tmp/ingest-main bench/wrk/run.sh  # also an older build of cmd/ingest (row old-ingest), same run
#
# Rows, for each --nats-sync in $SYNCS, every run in this order:
#   http     bare net/http handler answering 200 (bench/wrk/bare)
#   http-fast  bare fasthttp handler answering 200 (bench/wrk/barefast), the
#            floor of ingest's own server (internal/ingest.NewServer)
#   publish  raw JetStream sync publish, 64 goroutines, one connection
#            (bench/wrk/jspub) into the embedded server of a fresh ingest
#   ingest   otpscope ingest (cmd/ingest, embedded NATS), wrk -t2 -c64 with a
#            unique otpId per request (webhook.lua)
#   benthos  Benthos core http_server -> a sync JetStream output (bench/wrk/benthos,
#            its own module), into the same embedded server, no validation
#   old-ingest  with OLD_INGEST, that binary like ingest (before/after in one run)
# L = 1/(1/http + 1/publish) is the serial limit of a handler that must do both;
# L-fast the same with http-fast, the limit of a fasthttp handler.
# Not part of make test. Needs wrk (apt-get install -y wrk) and curl.
set -euo pipefail

RUNS=${RUNS:-3}
WARMUP=${WARMUP:-2s}
DURATION=${DURATION:-8s}
SYNCS=${SYNCS:-"2m always"}
PROFILE=${PROFILE:-}
OLD_INGEST=${OLD_INGEST:-}
THREADS=2
CONNS=64
TOKEN=wrk-bench-token-0123456789
NATS_PASSWORD=wrk-bench-nats-password
# Ports, each overridable like the settings above (two runs side by side, a
# port already taken).
HTTP_PORT=${HTTP_PORT:-18080}
ADMIN_PORT=${ADMIN_PORT:-18083}
NATS_PORT=${NATS_PORT:-14222}
BARE_PORT=${BARE_PORT:-18090}
BAREFAST_PORT=${BAREFAST_PORT:-18091}
BENTHOS_PORT=${BENTHOS_PORT:-18085}
BENTHOS_ADMIN=${BENTHOS_ADMIN:-14195}

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/bench/wrk
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "run.sh: wrk not found (apt-get install -y wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "run.sh: curl not found" >&2; exit 1; }

echo "building..." >&2
mkdir -p "$work/bin"
(cd "$root" && go build -o "$work/bin/ingest" ./cmd/ingest && go build -o "$work/bin/bare" ./bench/wrk/bare && go build -o "$work/bin/barefast" ./bench/wrk/barefast &&
	go build -o "$work/bin/jspub" ./bench/wrk/jspub && go build -o "$work/bin/ingestprof" ./bench/wrk/ingestprof)
(cd "$here/benthos" && go build -o "$work/bin/benthos" .)
[ -n "$PROFILE" ] && mkdir -p "$PROFILE"

# wait_http URL: until it answers (any status), at most 30 s.
wait_http() {
	for _ in $(seq 300); do
		curl -s -o /dev/null "$1" && return 0
		sleep 0.1
	done
	echo "run.sh: $1 never answered" >&2
	return 1
}

# wait_ready URL: until it answers 200, at most 30 s (a starting otpscope
# answers /readyz 503 at once).
wait_ready() {
	for _ in $(seq 300); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
		sleep 0.1
	done
	echo "run.sh: $1 never answered 200" >&2
	return 1
}

# stop PID: SIGTERM and wait.
stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	pids=("${pids[@]/$1/}")
}

# ticks PID...: CPU time (user + system, clock ticks) the processes used so far.
ticks() {
	local t=0 p
	for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
	echo $t
}

# with_cpu T0 T1 RESULT-line: the line with cpu_us, server-side CPU per request
# (the processes' CPU over the measured run, in µs, divided by its requests).
with_cpu() {
	local rps secs
	rps=$(echo "$3" | sed 's/.*rps=\([0-9]*\).*/\1/')
	secs=$(echo "$DURATION" | sed 's/s$//')
	echo "$3 cpu_us=$(awk -v a="$1" -v b="$2" -v r="$rps" -v s="$secs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / (r * s) }')"
}

# load URL PID...: wrk warm-up (discarded), then the measured run; prints the
# RESULT line with the CPU the server processes PID... spent per request.
load() {
	local url=$1 t0 t1 r
	shift
	WEBHOOK_TOKEN=$TOKEN wrk -t$THREADS -c$CONNS -d"$WARMUP" -s "$here/webhook.lua" "$url" >/dev/null
	t0=$(ticks "$@")
	r=$(WEBHOOK_TOKEN=$TOKEN wrk -t$THREADS -c$CONNS -d"$DURATION" --timeout 10s -s "$here/webhook.lua" "$url" | grep '^RESULT')
	t1=$(ticks "$@")
	with_cpu "$t0" "$t1" "$r"
}

# publish PID: jspub into the embedded server of ingest PID; cpu_us is jspub's
# own CPU per message (it measures it) plus the server's over the measured part.
publish() {
	local out=$work/jspub.out t0 t1 r client
	"$work/bin/jspub" -url nats://127.0.0.1:$NATS_PORT -password $NATS_PASSWORD \
		-concurrency $CONNS -warmup "$WARMUP" -duration "$DURATION" >"$out" &
	sleep "${WARMUP%s}"
	t0=$(ticks "$1")
	wait $!
	t1=$(ticks "$1")
	r=$(sed 's/ client_cpu_us=.*//' "$out")
	client=$(sed 's/.*client_cpu_us=//' "$out")
	with_cpu "$t0" "$t1" "$r" | awk -v c="$client" '{ sub(/cpu_us=[-0-9.]+/, sprintf("cpu_us=%.1f", substr($NF, 8) + c)); print }'
}

results=$work/results
record() { # row run RESULT-line
	echo "$1 $2 $(echo "$3" | sed 's/RESULT //')" | tee -a "$results" >&2
}

# start_ingest BINARY SYNC: an ingest (its embedded NATS server the one the
# publish and Benthos rows use) on a fresh data directory; sets $ingest.
start_ingest() {
	rm -rf "$work/data"
	"$1" --listen 127.0.0.1:$HTTP_PORT --admin-listen 127.0.0.1:$ADMIN_PORT --data-dir "$work/data" \
		--nats-listen 127.0.0.1:$NATS_PORT --nats-sync "$2" --nats-password $NATS_PASSWORD \
		--webhook-token $TOKEN --status-interval 0 --log-level warn 2>>"$work/ingest.log" &
	ingest=$!
	pids+=($ingest)
	wait_ready http://127.0.0.1:$HTTP_PORT/readyz
}
stop_ingest() { stop "$ingest"; }

for run in $(seq "$RUNS"); do
	"$work/bin/bare" -listen 127.0.0.1:$BARE_PORT &
	pids+=($!)
	bare=$!
	wait_http http://127.0.0.1:$BARE_PORT/
	record http "$run" "$(load http://127.0.0.1:$BARE_PORT/webhooks/tyntec $bare)"
	stop "$bare"
	"$work/bin/barefast" -listen 127.0.0.1:$BAREFAST_PORT &
	pids+=($!)
	bare=$!
	wait_http http://127.0.0.1:$BAREFAST_PORT/
	record http-fast "$run" "$(load http://127.0.0.1:$BAREFAST_PORT/webhooks/tyntec $bare)"
	stop "$bare"

	for sync in $SYNCS; do
		# Every row on a fresh server: what an earlier row left in the
		# stream (its duplicate window, its store) is not the next one's cost.
		start_ingest "$work/bin/ingest" "$sync"
		record "publish-$sync" "$run" "$(publish "$ingest")"
		stop_ingest

		bin=$work/bin/ingest
		[ -n "$PROFILE" ] && bin=$work/bin/ingestprof
		CPUPROFILE=${PROFILE:+$PROFILE/ingest-$sync-$run.pprof} start_ingest "$bin" "$sync"
		record "ingest-$sync" "$run" "$(load http://127.0.0.1:$HTTP_PORT/webhooks/tyntec "$ingest")"
		stop_ingest

		start_ingest "$work/bin/ingest" "$sync"
		cat >"$work/benthos.yaml" <<-YAML
			http:
			  address: 127.0.0.1:$BENTHOS_ADMIN
			logger:
			  level: WARN
			input:
			  http_server:
			    address: 127.0.0.1:$BENTHOS_PORT
			    path: /webhooks/tyntec
			    allowed_verbs: [POST]
			output:
			  nats_jetstream_sync:
			    url: nats://127.0.0.1:$NATS_PORT
			    subject: tyntec.2fa.bench.benthos
			    user: otpscope
			    password: $NATS_PASSWORD
		YAML
		"$work/bin/benthos" -c "$work/benthos.yaml" >"$work/benthos.log" 2>&1 &
		benthos=$!
		pids+=($benthos)
		wait_http http://127.0.0.1:$BENTHOS_ADMIN/ready
		record "benthos-$sync" "$run" "$(load http://127.0.0.1:$BENTHOS_PORT/webhooks/tyntec "$benthos" "$ingest")"
		stop "$benthos"
		stop_ingest

		if [ -n "$OLD_INGEST" ]; then
			start_ingest "$OLD_INGEST" "$sync"
			record "old-ingest-$sync" "$run" "$(load http://127.0.0.1:$HTTP_PORT/webhooks/tyntec "$ingest")"
			stop_ingest
		fi
	done
done

# The table: medians of the runs; ratios are computed per run (baselines from
# the same run), then their median. cpu µs/req is what the server side spent
# per request (ingest: its process; benthos: Benthos and the NATS server;
# publish: jspub and the NATS server); on a shared machine it moves less than
# req/s. L's is http's plus publish's; cpu-L/ingest is L's over ingest's.
awk -v syncs="$SYNCS" '
function med(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
function lim(r, sy) { return 1 / (1 / v["http", r, "rps"] + 1 / v["publish-" sy, r, "rps"]) }
function lcpu(r, sy) { return v["http", r, "cpu_us"] + v["publish-" sy, r, "cpu_us"] }
function limf(r, sy) { return 1 / (1 / v["http-fast", r, "rps"] + 1 / v["publish-" sy, r, "rps"]) }
function lfcpu(r, sy) { return v["http-fast", r, "cpu_us"] + v["publish-" sy, r, "cpu_us"] }
{
	row = $1; run = $2
	for (i = 3; i <= NF; i++) { split($i, kv, "="); v[row, run, kv[1]] = kv[2] }
	runs[run] = 1; rows[row] = 1
}
END {
	nr = 0; for (r in runs) nr++
	printf "%-18s %8s %8s %7s %7s %12s\n", "row", "req/s", "p99 ms", "non2xx", "errors", "cpu µs/req"
	n = split("http http-fast", order, " ")
	ns = split(syncs, s, " ")
	for (i = 1; i <= ns; i++) { order[++n] = "publish-" s[i]; order[++n] = "L-" s[i]; order[++n] = "L-fast-" s[i]; order[++n] = "ingest-" s[i]; order[++n] = "benthos-" s[i]; order[++n] = "old-ingest-" s[i] }
	for (k = 1; k <= n; k++) {
		row = order[k]; sy = row; sub(/^[a-zL-]+-/, "", sy)
		if (row ~ /^L-fast-/) {
			if (!("http-fast" in rows)) continue
			for (r = 1; r <= nr; r++) { x[r] = limf(r, sy); c[r] = lfcpu(r, sy) }
			printf "%-18s %8.0f %8s %7s %7s %12.1f\n", row, med(x, nr), "", "", "", med(c, nr); continue
		}
		if (row ~ /^L-/) {
			for (r = 1; r <= nr; r++) { x[r] = lim(r, sy); c[r] = lcpu(r, sy) }
			printf "%-18s %8.0f %8s %7s %7s %12.1f\n", row, med(x, nr), "", "", "", med(c, nr); continue
		}
		if (!(row in rows)) continue
		for (r = 1; r <= nr; r++) { x[r] = v[row, r, "rps"]; y[r] = v[row, r, "p99_ms"]; z[r] = v[row, r, "non2xx"]; e[r] = v[row, r, "errors"]; c[r] = v[row, r, "cpu_us"] }
		p99 = (y[1] == "-") ? "-" : sprintf("%.1f", med(y, nr))
		printf "%-18s %8.0f %8s %7d %7d %12.1f\n", row, med(x, nr), p99, med(z, nr), med(e, nr), med(c, nr)
	}
	print ""
	for (i = 1; i <= ns; i++) {
		sy = s[i]
		for (r = 1; r <= nr; r++) {
			a[r] = v["ingest-" sy, r, "rps"] / lim(r, sy)
			b[r] = v["ingest-" sy, r, "rps"] / v["benthos-" sy, r, "rps"]
			c[r] = v["ingest-" sy, r, "rps"] / v["publish-" sy, r, "rps"]
			d[r] = lcpu(r, sy) / v["ingest-" sy, r, "cpu_us"]
			f[r] = v["benthos-" sy, r, "cpu_us"] / v["ingest-" sy, r, "cpu_us"]
		}
		printf "sync %-7s ingest/L %.2f  ingest/benthos %.2f  ingest/publish %.2f  cpu-L/ingest %.2f  cpu-benthos/ingest %.2f", sy, med(a, nr), med(b, nr), med(c, nr), med(d, nr), med(f, nr)
		if ("http-fast" in rows) {
			for (r = 1; r <= nr; r++) { a[r] = v["ingest-" sy, r, "rps"] / limf(r, sy); d[r] = lfcpu(r, sy) / v["ingest-" sy, r, "cpu_us"] }
			printf "\n             ingest/L-fast %.2f  cpu-L-fast/ingest %.2f", med(a, nr), med(d, nr)
		}
		if (("old-ingest-" sy) in rows) {
			for (r = 1; r <= nr; r++) { a[r] = v["old-ingest-" sy, r, "rps"] / lim(r, sy); c[r] = v["old-ingest-" sy, r, "rps"] / v["publish-" sy, r, "rps"]; d[r] = lcpu(r, sy) / v["old-ingest-" sy, r, "cpu_us"] }
			printf "\n             old-ingest/L %.2f  old-ingest/publish %.2f  cpu-L/old-ingest %.2f", med(a, nr), med(c, nr), med(d, nr)
		}
		printf "\n"
	}
}' "$results"
