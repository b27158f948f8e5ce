#!/usr/bin/env bash
# scripts/test.sh: vet and test Kelpie, with a PostgreSQL server for the
# storage/postgres tests.
#
#   scripts/test.sh                          # go vet ./... && go test -race -count=1 ./...
#   scripts/test.sh -run Foo ./storage/...   # extra args replace ./... (-race stays)
#
# PostgreSQL: if KELPIE_TEST_POSTGRES_URL is set and the server answers, it
# is used. Otherwise a local Debian cluster is used, and set up if needed:
# the server is installed with apt-get (as root), a cluster created and
# started with pg_ctlcluster, and a role and database kelpie_test created;
# KELPIE_TEST_POSTGRES_URL is then exported for the tests. Safe to rerun.
# CI is passed through unchanged (CI=true makes a missing server a test
# failure rather than a skip).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

PG_ROLE=kelpie
PG_PASSWORD=kelpie
PG_DB=kelpie_test

# ---- 1. Go -----------------------------------------------------------------
if [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found: install Go (https://go.dev/dl/) into /usr/local/go"
log "using $(go version)"

is_root() { [[ "$(id -u)" -eq 0 ]]; }

apt_install() { # packages...
	is_root || die "need $* installed; run as root or: sudo apt-get install -y $*"
	command -v apt-get >/dev/null 2>&1 || die "need $* installed, and apt-get is not available"
	log "installing $*"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# -race needs cgo, which needs a C compiler.
if ! command -v gcc >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
	apt_install gcc libc6-dev
fi

# The tool sandbox's tests (sandbox/) run real bubblewrap sandboxes with
# Python and Node; the SDK and letta-code suites need Node and npm too.
if ! command -v bwrap >/dev/null 2>&1; then
	apt_install bubblewrap
fi
if ! command -v python3 >/dev/null 2>&1; then
	apt_install python3 python3-venv python3-pip
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	apt_install nodejs npm
fi

# The MCP client's tests drive a real third-party MCP server,
# @modelcontextprotocol/server-everything (npm), over stdio, SSE and
# streamable HTTP.
bash scripts/install-mcp-everything.sh

# ---- 2. PostgreSQL -----------------------------------------------------------
pg_up() { # pg_isready arguments...
	command -v pg_isready >/dev/null 2>&1 && pg_isready -q -t 3 "$@"
}

as_postgres() { # command...
	(cd / && runuser -u postgres -- "$@")
}

local_url() { # port
	printf 'postgres://%s:%s@127.0.0.1:%s/%s?sslmode=disable' "$PG_ROLE" "$PG_PASSWORD" "$1" "$PG_DB"
}

can_login() { # url
	PGCONNECT_TIMEOUT=5 psql "$1" -X -q -At -c 'SELECT 1' >/dev/null 2>&1
}

ensure_local_postgres() {
	local bins ver
	bins=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null || true)
	if [[ -z "$bins" ]]; then
		apt_install postgresql
		bins=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null || true)
		[[ -n "$bins" ]] || die "postgresql installed, but no server binary under /usr/lib/postgresql"
	fi
	command -v pg_lsclusters >/dev/null 2>&1 || apt_install postgresql-common

	# Prefer a running cluster, then main of the newest installed version.
	local cluster port status
	cluster=$(pg_lsclusters -h | awk '$4 ~ /^online/ {print $1 " " $2 " " $3 " " $4; exit}')
	if [[ -n "$cluster" ]] && ! is_root; then
		# Without root, use a running cluster if an earlier root run set it up.
		read -r _ _ port _ <<<"$cluster"
		if can_login "$(local_url "$port")"; then
			export KELPIE_TEST_POSTGRES_URL
			KELPIE_TEST_POSTGRES_URL=$(local_url "$port")
			log "using local PostgreSQL on port $port"
			return
		fi
	fi
	is_root || die "a local PostgreSQL cluster must be set up and started as root (pg_ctlcluster); run once as root, or set KELPIE_TEST_POSTGRES_URL to a reachable server"
	if [[ -z "$cluster" ]]; then
		cluster=$(pg_lsclusters -h | sort -k1,1nr | awk '{print $1 " " $2 " " $3 " " $4; exit}')
	fi
	if [[ -z "$cluster" ]]; then
		ver=$(printf '%s\n' $bins | sed -E 's#^/usr/lib/postgresql/([^/]+)/bin/postgres$#\1#' | sort -n | tail -1)
		log "creating PostgreSQL $ver cluster main"
		pg_createcluster "$ver" main >/dev/null
		cluster=$(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" {print $1 " " $2 " " $3 " " $4; exit}')
		[[ -n "$cluster" ]] || die "pg_createcluster $ver main did not create a cluster"
	fi
	local name
	read -r ver name port status <<<"$cluster"

	if [[ "$status" != online* ]]; then
		log "starting PostgreSQL $ver on port $port"
		install -d -o postgres -g postgres -m 2775 /var/run/postgresql
		if ! pg_ctlcluster "$ver" "$name" start; then
			tail -n 20 "/var/log/postgresql/postgresql-$ver-$name.log" >&2 || true
			die "could not start PostgreSQL $ver/$name"
		fi
	else
		log "PostgreSQL $ver is running on port $port"
	fi
	local i
	for ((i = 0; i < 60; i++)); do
		pg_up -h 127.0.0.1 -p "$port" && break
		sleep 0.5
	done
	pg_up -h 127.0.0.1 -p "$port" || die "PostgreSQL $ver/$name is not accepting connections on 127.0.0.1:$port"

	log "ensuring role $PG_ROLE and database $PG_DB"
	as_postgres psql -p "$port" -X -q -v ON_ERROR_STOP=1 -d postgres <<-SQL
		SELECT format('CREATE ROLE %I', '$PG_ROLE')
		WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') \gexec
		ALTER ROLE $PG_ROLE WITH LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
		SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DB', '$PG_ROLE')
		WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
	SQL

	KELPIE_TEST_POSTGRES_URL=$(local_url "$port")
	export KELPIE_TEST_POSTGRES_URL
	# Check that the role can log in over TCP with its password.
	can_login "$KELPIE_TEST_POSTGRES_URL" ||
		die "cannot log in as $PG_ROLE at 127.0.0.1:$port (check pg_hba.conf allows password logins from 127.0.0.1)"
}

if [[ -n "${KELPIE_TEST_POSTGRES_URL:-}" ]] && pg_up -d "$KELPIE_TEST_POSTGRES_URL"; then
	log "using PostgreSQL at KELPIE_TEST_POSTGRES_URL"
else
	if [[ -n "${KELPIE_TEST_POSTGRES_URL:-}" ]]; then
		log "KELPIE_TEST_POSTGRES_URL is set but not reachable; using a local server instead"
	fi
	ensure_local_postgres
fi

# ---- 3. vet and test ---------------------------------------------------------
# Arguments that look like package patterns (., ./x, ../x, module paths)
# select packages, for go vet too; the rest are go test flags (the value
# after a flag such as -run is skipped). With no patterns: ./...
pkgs=()
skip_value=false
for arg in "$@"; do
	if $skip_value; then
		skip_value=false
		continue
	fi
	case "$arg" in
	-run | -skip | -bench | -benchtime | -count | -cpu | -parallel | -timeout | -tags | -p | -list | \
		-shuffle | -fuzz | -fuzztime | -fuzzminimizetime | -exec | -o | -outputdir | -covermode | -coverpkg | \
		-coverprofile | -cpuprofile | -memprofile | -memprofilerate | -blockprofile | -blockprofilerate | \
		-mutexprofile | -mutexprofilefraction | -trace | -vet | -ldflags | -gcflags | -asmflags | -mod | \
		-modfile | -overlay | -pgo | -pkgdir | -toolexec | -C | -buildmode | -compiler | -installsuffix | \
		-*.run | -*.skip | -*.count | -*.timeout | -*.bench | -*.benchtime | -*.cpu | -*.parallel)
		skip_value=true
		;;
	-*) ;;
	. | ./* | ../* | github.com/* | std | all) pkgs+=("$arg") ;;
	esac
done
test_args=("$@")
if ((${#pkgs[@]} == 0)); then
	pkgs=(./...)
	test_args+=(./...)
fi

if [[ -n "${CI+set}" ]]; then
	export CI
fi

log "go vet ${pkgs[*]}"
go vet "${pkgs[@]}"
log "go test -race -count=1 ${test_args[*]}"
go test -race -count=1 "${test_args[@]}"

# ---- 4. Letta SDK conformance suite (sdktest/) -------------------------------
# Runs with any arguments. Builds the binary and drives it with the official
# Letta TypeScript SDK (sdktest/, node --test); every response body is checked
# against the Letta OpenAPI document. Needs Node >= 18 and npm (installed with
# apt-get, as root, if missing) and the npm registry for `npm ci`.
sdk_tmp=$(mktemp -d)
trap 'rm -rf "$sdk_tmp"' EXIT
log "go build -o $sdk_tmp/kelpie ./cmd/kelpie"
go build -o "$sdk_tmp/kelpie" ./cmd/kelpie
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	apt_install nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 18)) || die "sdktest needs Node >= 18, found $(node --version)"
log "npm ci in sdktest (node $(node --version), npm $(npm --version))"
(cd sdktest && npm ci --no-audit --no-fund --loglevel=error)
log "Letta SDK conformance suite (sdktest)"
KELPIE_BIN="$sdk_tmp/kelpie" npm test --prefix sdktest --silent

# ---- 5. letta-code end to end (lettacode/) ---------------------------------
# Drives the pinned letta-code CLIs (0.25.9, 0.32.18) headless against the
# binary built above (create, resume, a client tool); see lettacode/README
# and FINDINGS.md. Needs the npm registry for the first install.
log "installing letta-code (scripts/install-letta-code.sh)"
scripts/install-letta-code.sh
log "letta-code end-to-end suite (lettacode)"
KELPIE_BIN="$sdk_tmp/kelpie" npm test --prefix lettacode --silent
