#!/usr/bin/env bash
# setup-promtool.sh — put Prometheus' promtool at $PROMTOOL_DIR/promtool, so
# that go test ./deploy/ checks deploy/prometheus/otpscope-rules.yml and runs
# its unit tests with Prometheus' own rule engine.
#
# Usage: PROMTOOL_DIR=/path/to/dir bash scripts/setup-promtool.sh
#
# promtool comes from Debian's prometheus package: `apt-get download` fetches
# the .deb, which apt checks against the signed package lists, and dpkg-deb
# unpacks it in a temporary directory. Nothing is installed and no service
# starts. Without package lists (a fresh container), the script runs
# `apt-get update` when it runs as root, else says to. Idempotent: a working
# promtool there already is kept.
set -euo pipefail

DIR="${PROMTOOL_DIR:-./.cache/promtool}"
BIN="$DIR/promtool"

log() { printf 'setup-promtool: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; then
	log "$("$BIN" --version 2>&1 | head -n1) already at $BIN; nothing to do"
	exit 0
fi
for tool in apt-get dpkg-deb mktemp; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not installed (a Debian or Ubuntu machine)"
done

mkdir -p "$DIR"
WORK="$(mktemp -d "$DIR/.setup.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

download() { (cd "$WORK" && apt-get download -qq prometheus 2>/dev/null); }
if ! download; then
	if [[ "$(id -u)" != 0 ]]; then
		die "apt-get download prometheus failed; run 'apt-get update' as root, then this again"
	fi
	log "no package lists for prometheus; running apt-get update"
	apt-get update -qq
	download || die "apt-get download prometheus failed after apt-get update"
fi
deb=("$WORK"/prometheus_*.deb)
[[ -f "${deb[0]}" ]] || die "apt-get download left no prometheus_*.deb"
dpkg-deb -x "${deb[0]}" "$WORK/root"
install -m 0755 "$WORK/root/usr/bin/promtool" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
log "$("$BIN" --version 2>&1 | head -n1) at $BIN (from $(basename "${deb[0]}"))"
