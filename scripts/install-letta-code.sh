#!/usr/bin/env bash
# scripts/install-letta-code.sh: install the pinned letta-code versions the
# end-to-end suite (lettacode/) drives, each into lettacode/v<version>/,
# with `npm ci` from its committed package-lock.json.
#
#   scripts/install-letta-code.sh            # install what is missing or stale
#   scripts/install-letta-code.sh --force    # reinstall both
#
# Idempotent: a version whose node_modules was installed from the current
# package-lock.json (recorded in node_modules/.kelpie-lock.sha256) is left
# alone. Install scripts are not run (--ignore-scripts): headless letta-code
# needs none, and some would reach the network (@scarf/scarf reports
# installs). Needs Node >= 18 and npm, and the npm registry.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

force=false
case "${1:-}" in
--force) force=true ;;
"") ;;
*) die "unknown argument $1 (want --force or nothing)" ;;
esac

command -v node >/dev/null 2>&1 || die "node not found: install Node >= 18 (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm not found: install it (apt-get install npm)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"

for dir in lettacode/v*/; do
	dir=${dir%/}
	[[ -f "$dir/package-lock.json" ]] || die "$dir has no package-lock.json"
	want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
	stamp="$dir/node_modules/.kelpie-lock.sha256"
	if ! $force && [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$dir/node_modules/@letta-ai/letta-code/letta.js" ]]; then
		log "$dir is up to date"
		continue
	fi
	log "npm ci in $dir"
	(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
	[[ -f "$dir/node_modules/@letta-ai/letta-code/letta.js" ]] || die "npm ci in $dir did not install @letta-ai/letta-code"
	printf '%s\n' "$want" >"$stamp"
done
