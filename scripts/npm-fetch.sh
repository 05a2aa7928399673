# npm-fetch.sh — sourced by the setup scripts: fetch one pinned npm package
# and verify it, the one way this project downloads anything at setup.
#
# npm_fetch WORK NAME VERSION INTEGRITY packs NAME@VERSION from the npm
# registry into the directory WORK, checks the tarball's sha512 against
# INTEGRITY (npm's "sha512-<base64>" form, computed with node, which comes
# with npm) and sets TARBALL to its path. The caller defines log and die.
npm_fetch() {
	local work="$1" name="$2" version="$3" integrity="$4"
	npm pack --silent --pack-destination "$work" "$name@$version" >"$work/pack.out" ||
		die "npm pack $name@$version failed (is the npm registry reachable?)"
	local tarballs
	shopt -s nullglob
	tarballs=("$work"/*.tgz)
	shopt -u nullglob
	[[ ${#tarballs[@]} -eq 1 ]] || die "expected one tarball from npm pack, found ${#tarballs[@]}"
	TARBALL="${tarballs[0]}"
	log "verifying integrity of $(basename "$TARBALL")"
	local got
	got="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$TARBALL")"
	[[ "$got" == "$integrity" ]] ||
		die "integrity mismatch for $name@$version: got $got, want $integrity"
	log "integrity ok"
}
