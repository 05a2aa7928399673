#!/usr/bin/env bash
# bench/wrk/memory.sh: RSS of the all-in-one (cmd/otpscope: ingest, sink into
# the embedded ClickHouse engine, reporter; poller off without a tyntec key) at
# rest and under the ingest benchmark's load (wrk -t2 -c64, webhook.lua), over
# LOADS consecutive loads of LOAD each with REST between them. Prints, per
# phase, the RSS at its end and its peak (sampled every second), the Go heap in
# use (garbage included), the live heap (after two forced collections: what is
# still referenced), the sink's lag (events not yet inserted into ClickHouse:
# at a rest, whether the sink is still catching up), and the webhooks
# accepted so far. Growth between loads should stay
# within what the stream's duplicate window holds (one id per accepted webhook
# for --stream-duplicate-window, 10 minutes by default).
#
#   bench/wrk/memory.sh                               # 3 x 60 s loads, ~5 minutes
#   LOADS=1 LOAD=20s REST=10s bench/wrk/memory.sh     # a quick look
#   DUP_WINDOW=30s bench/wrk/memory.sh                # ids leave the window between loads
#   NATS_SYNC=2m bench/wrk/memory.sh                  # flush every 2 minutes: many more webhooks per load
#
# Needs wrk and curl, and the engine (OTPSCOPE_CHDB_LIB, as make test). Not part
# of make test.
set -euo pipefail

LOADS=${LOADS:-3}
LOAD=${LOAD:-60s}
REST=${REST:-30s}
DUP_WINDOW=${DUP_WINDOW:-10m}
NATS_SYNC=${NATS_SYNC:-always}
TOKEN=wrk-bench-token-0123456789
# Ports, each overridable like the settings above.
PORT=${PORT:-18380}
ADMIN=${ADMIN:-18381}
NATS_PORT=${NATS_PORT:-14522}
CH_PORT=${CH_PORT:-18323}

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/bench/wrk
work=$(mktemp -d)
pid=
sampler=
cleanup() {
	[ -n "$sampler" ] && kill "$sampler" 2>/dev/null
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "memory.sh: wrk not found (apt-get install -y wrk)" >&2; exit 1; }

# The live heap comes from the admin listener's profiler (/debug/pprof/).
(cd "$root" && go build -o "$work/otpscope" ./cmd/otpscope)
"$work/otpscope" --data-dir "$work/data" --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$ADMIN \
	--nats-listen 127.0.0.1:$NATS_PORT --clickhouse-listen 127.0.0.1:$CH_PORT --webhook-token $TOKEN \
	--stream-duplicate-window "$DUP_WINDOW" --nats-sync "$NATS_SYNC" --status-interval 0 --log-level warn >"$work/otpscope.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/readyz)" = 200 ] && break
	sleep 0.1
done

rss_mb() { awk '/^VmRSS/ {printf "%d", $2 / 1024}' /proc/$pid/status; }
metric() { curl -s http://127.0.0.1:$ADMIN/metrics | awk -v k="$1" '$1 == k {printf "%d", $2}'; }
# Every second, the RSS into $work/rss (one number a line).
: >"$work/rss"
(while kill -0 $pid 2>/dev/null; do rss_mb >>"$work/rss"; echo >>"$work/rss"; sleep 1; done) &
sampler=$!
mark() { wc -l <"$work/rss"; }
peak_since() { tail -n +"$1" "$work/rss" | sort -n | tail -1; }

# live_mb: HeapAlloc right after a forced collection, asked twice (objects
# kept by a sync.Pool survive the first).
live_mb() {
	curl -s -o /dev/null "http://127.0.0.1:$ADMIN/debug/pprof/heap?gc=1"
	curl -s "http://127.0.0.1:$ADMIN/debug/pprof/heap?gc=1&debug=1" | awk '$2 == "HeapAlloc" {printf "%d", $4 / 1048576}'
}
# sink_lag: events the sink has not inserted yet (not delivered, or delivered
# and not acknowledged).
sink_behind() {
	local lag pending
	lag=$(metric otpscope_sink_consumer_lag) pending=$(metric otpscope_sink_ack_pending)
	echo $((${lag:-0} + ${pending:-0}))
}
printf "%-10s %8s %8s %10s %8s %9s %10s\n" phase rss_mb peak_mb heap_mb live_mb sink_lag accepted
report() { # phase first-sample-line
	printf "%-10s %8s %8s %10d %8s %9s %10s\n" "$1" "$(rss_mb)" "$(peak_since "$2")" \
		$(( $(metric go_memstats_heap_inuse_bytes) / 1048576 )) "$(live_mb)" \
		"$(sink_behind)" \
		"$(metric 'otpscope_ingest_requests_total{endpoint="webhook",outcome="accepted"}')"
}
m=$(mark)
sleep "$REST"
report rest-0 "$m"
for i in $(seq "$LOADS"); do
	m=$(mark)
	WEBHOOK_TOKEN=$TOKEN wrk -t2 -c64 -d"$LOAD" --timeout 10s -s "$here/webhook.lua" http://127.0.0.1:$PORT/webhooks/tyntec |
		grep "^RESULT" | sed "s/^RESULT/load-$i wrk:/"
	report "load-$i" "$m"
	m=$(mark)
	sleep "$REST"
	report "rest-$i" "$m"
done
