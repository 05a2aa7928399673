#!/bin/bash
# live.sh — what a console tab on the Live page costs the browser: Chromium's
# CPU (all its processes) over 60 s with one headless tab on #live, the
# all-in-one's simulator at --simulate-rate 20 (about 30 webhooks a second,
# each a Live event), each binary in turn on a fresh data directory.
#
#   OTPSCOPE_CHDB_LIB=$PWD/.cache/chdb/libchdb.so bench/console/live.sh /tmp/otpscope-before /tmp/otpscope-after [rounds]
#
# Ports 48080–48222 and /tmp/otpscope-live-bench are its own; needs chromium and curl.
set -u
rounds=${3:-3}
work=/tmp/otpscope-live-bench
tck=$(getconf CLK_TCK)
chromium_cpu() { local t=0 v; for p in $(pgrep -f "user-data-dir=$work/chromium"); do v=$(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null); t=$((t + ${v:-0})); done; echo $t; }
accepted() { curl -s http://127.0.0.1:48081/metrics | awk '/^otpscope_ingest_requests_total\{endpoint="webhook",outcome="accepted"\}/ {print $2}'; }
for round in $(seq 1 "$rounds"); do for bin in "$1" "$2"; do
  rm -rf "$work"; mkdir -p "$work"
  "$bin" --simulate --simulate-rate 20 --listen 127.0.0.1:48080 --admin-listen 127.0.0.1:48081 --nats-listen 127.0.0.1:48222 \
    --clickhouse-listen 127.0.0.1:48123 --simulate-listen 127.0.0.1:48090 --data-dir "$work/data" > "$work/otpscope.log" 2>&1 &
  pid=$!
  sleep 20
  chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$work/chromium" "http://127.0.0.1:48081/console/#live" > /dev/null 2>&1 &
  sleep 15
  c0=$(chromium_cpu); w0=$(accepted)
  sleep 60
  c1=$(chromium_cpu); w1=$(accepted)
  echo "round=$round build=$(basename "$bin") chromium_cpu_s_per_min=$(echo "scale=1; ($c1 - $c0) / $tck" | bc) webhooks=$(echo "$w1 - $w0" | bc)"
  pkill -f "user-data-dir=$work/chromium"
  kill -TERM $pid; while kill -0 $pid 2> /dev/null; do sleep 1; done; sleep 2
done; done
rm -rf "$work"
