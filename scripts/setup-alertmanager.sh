#!/usr/bin/env bash
# setup-alertmanager.sh — build Prometheus' Alertmanager at
# $ALERTMANAGER_DIR/alertmanager, so that the reporter's tests post alerts to
# a real one (internal/reporter, "alertmanager").
#
# Usage: ALERTMANAGER_DIR=/path/to/dir bash scripts/setup-alertmanager.sh
#
# `go install` of the pinned release, through the Go module proxy, its
# modules checked against the checksum database; nothing of it enters
# otpscope's go.mod. Debian's prometheus-alertmanager package is not used:
# its binary reads its default template from /usr/share/prometheus, which
# only installing the package provides. Idempotent: the pinned version
# built already (VERSION beside it) is kept. About 90 s on two cores.
set -euo pipefail

VERSION=v0.28.1
DIR="${ALERTMANAGER_DIR:-./.cache/alertmanager}"

log() { printf 'setup-alertmanager: %s\n' "$*" >&2; }

if [[ -x "$DIR/alertmanager" && "$(cat "$DIR/VERSION" 2>/dev/null)" == "$VERSION" ]]; then
	log "alertmanager $VERSION already at $DIR/alertmanager; nothing to do"
	exit 0
fi
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
rm -f "$DIR/VERSION"
GOBIN="$DIR" GOFLAGS=-mod=mod "${GO:-go}" install "github.com/prometheus/alertmanager/cmd/alertmanager@$VERSION"
echo "$VERSION" > "$DIR/VERSION"
log "alertmanager $VERSION at $DIR/alertmanager"
