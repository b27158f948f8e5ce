#!/usr/bin/env bash
# scripts/install-mcp-everything.sh: install the MCP reference test server
# (@modelcontextprotocol/server-everything, pinned in
# mcpclient/testdata/everything/package-lock.json) for the mcpclient tests,
# which run it over stdio, SSE and streamable HTTP.
#
#   scripts/install-mcp-everything.sh
#
# Needs Node >= 18 and npm (installed with apt-get, as root, if missing) and
# the npm registry. Idempotent: once installed from the current lock file it
# does nothing; a changed lock file reinstalls (npm ci).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

dir=mcpclient/testdata/everything
stamp=$dir/node_modules/.kelpie-lock-sha256

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	[[ "$(id -u)" -eq 0 ]] || die "need node and npm; run as root or: sudo apt-get install -y nodejs npm"
	command -v apt-get >/dev/null 2>&1 || die "need node and npm, and apt-get is not available"
	log "installing nodejs npm"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 18)) || die "server-everything needs Node >= 18, found $(node --version)"

want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" &&
	-f "$dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js" ]]; then
	log "server-everything already installed in $dir"
	exit 0
fi
log "npm ci in $dir (node $(node --version), npm $(npm --version))"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
printf '%s\n' "$want" >"$stamp"
log "installed server-everything $(node -p "require('./$dir/node_modules/@modelcontextprotocol/server-everything/package.json').version")"
