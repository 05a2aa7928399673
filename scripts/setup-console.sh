#!/usr/bin/env bash
# setup-console.sh — fetch the console's chart library (uPlot) from the npm
# registry, verify the tarball against a pinned sha512 and unpack it, so that
# the copies committed under internal/console/assets/vendor/ can be checked
# against it (internal/console's TestVendoredAssetsMatchPinnedPackage).
#
# Usage: CONSOLE_VENDOR_DIR=/path/to/dir bash scripts/setup-console.sh
#
# The build never needs this script: the two files the console serves are
# committed and embedded. It exists so that those files are provably the
# pinned package's, and so that a version bump is one edit here plus a copy.
set -euo pipefail

PKG_NAME="uplot"
PKG_VERSION="1.6.32"
PKG_INTEGRITY="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="

DIR="${CONSOLE_VENDOR_DIR:-./.cache/console}"
DEST="$DIR/$PKG_NAME"
MARKER="$DIR/.version"
WANT_MARKER="$PKG_NAME@$PKG_VERSION $PKG_INTEGRITY"

log() { printf 'setup-console: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/npm-fetch.sh
source "$(dirname "${BASH_SOURCE[0]}")/npm-fetch.sh"

if [[ -d "$DEST" && -f "$MARKER" && "$(cat "$MARKER")" == "$WANT_MARKER" ]]; then
	log "$PKG_NAME@$PKG_VERSION already unpacked at $DEST; nothing to do"
	exit 0
fi
for tool in npm node tar mktemp; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not installed"
done

mkdir -p "$DIR"
WORK="$(mktemp -d "$DIR/.setup.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

log "downloading $PKG_NAME@$PKG_VERSION from the npm registry"
npm_fetch "$WORK" "$PKG_NAME" "$PKG_VERSION" "$PKG_INTEGRITY"

mkdir -p "$WORK/unpacked"
tar -xzf "$TARBALL" -C "$WORK/unpacked"
rm -rf "$DEST"
mv "$WORK/unpacked/package" "$DEST"
printf '%s\n' "$WANT_MARKER" >"$MARKER"
log "unpacked $PKG_NAME@$PKG_VERSION at $DEST"
