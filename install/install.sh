#!/bin/sh
# Installs the fleet agent on this host as a systemd service, with the Node.js runtime it needs.
# Served by the control plane at GET /install.sh, which fills in its own URL below:
#   curl -fsSL <url>/install.sh | sudo sh -s -- --token <join token> [--name <node name>]
# Flags are a stable interface (other tools call this script): see usage below.
set -eu
# Files for every user to read (the agent's user among them), whatever umask sudo passed on.
umask 022

FLEET_URL_DEFAULT='@FLEET_URL@'
# The Node.js version the control plane pins (its `node` package), filled in where it serves this.
NODE_VERSION_DEFAULT='@NODE_VERSION@'
NODE_MIRROR_DEFAULT=https://nodejs.org/dist
AGENT_USER=fleet-agent
SERVICE=fleet-agent
CONTAINER=fleet-agent
IMAGE_REF=localhost/fleet-agent:latest
MIN_GLIBC=2.28

usage() {
	cat <<'EOF'
Usage: install.sh [options]

Installs (or upgrades in place) the fleet agent as the systemd service fleet-agent, with its own
user, a Node.js runtime of its own under /opt/fleet-agent and its state in /var/lib/fleet-agent.
Where the host cannot run it (no systemd, glibc older than 2.28) it runs the agent container
image instead (docker or podman, --restart=always).

  --token <token>        join token (GET /api/swarm/join-token); needed on first install
  --name <name>          node name (default: this host's name)
  --url <url>            control plane URL (default: the one this script was served from)
  --cluster <name>       cluster to join
  --labels k=v,k=v       node labels
  --uninstall            remove everything this script added
  --engine-socket <path> container engine socket (default: the first of /var/run/docker.sock,
                         /run/docker.sock, /run/podman/podman.sock that exists; under --root
                         when given)
  --node-mirror <url>    where official Node.js builds are downloaded from when the control
                         plane has no runtime for this architecture (default
                         $FLEET_NODE_MIRROR, else https://nodejs.org/dist); checked against
                         the mirror's SHASUMS256.txt
  --node-version <v>     that build's version (default: the control plane's pinned one)
  --mode auto|systemd|container
                         how to run the agent (default auto: systemd where the host can)
  --root <dir>           install into the root filesystem at <dir> (image builds, tests):
                         files, user and unit are written there; nothing is started
                         (with --mode container the container still runs on this host)
  -h, --help             this text
EOF
}

say() { printf 'fleet-agent install: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

TOKEN=''
NAME=''
URL=''
CLUSTER=''
LABELS=''
UNINSTALL=0
ENGINE_SOCKET=''
MODE=auto
ROOT=''
NODE_MIRROR=${FLEET_NODE_MIRROR:-$NODE_MIRROR_DEFAULT}
NODE_VERSION=''

need_value() {
	if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi
}

while [ "$#" -gt 0 ]; do
	case "$1" in
	--token) need_value "$@"; TOKEN=$2; shift 2 ;;
	--name) need_value "$@"; NAME=$2; shift 2 ;;
	--url) need_value "$@"; URL=$2; shift 2 ;;
	--cluster) need_value "$@"; CLUSTER=$2; shift 2 ;;
	--labels) need_value "$@"; LABELS=$2; shift 2 ;;
	--engine-socket) need_value "$@"; ENGINE_SOCKET=$2; shift 2 ;;
	--mode) need_value "$@"; MODE=$2; shift 2 ;;
	--root) need_value "$@"; ROOT=$2; shift 2 ;;
	--node-mirror) need_value "$@"; NODE_MIRROR=$2; shift 2 ;;
	--node-version) need_value "$@"; NODE_VERSION=$2; shift 2 ;;
	--uninstall) UNINSTALL=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done

case "$MODE" in auto | systemd | container) ;; *) die "--mode must be auto, systemd or container" ;; esac
if [ -z "$URL" ]; then
	case "$FLEET_URL_DEFAULT" in @*) die "--url is required (this copy of the script was not served by a control plane)" ;; esac
	URL=$FLEET_URL_DEFAULT
fi
URL=${URL%/}
case "$URL" in http://* | https://*) ;; *) die "--url must be an http(s) URL, got $URL" ;; esac
NODE_MIRROR=${NODE_MIRROR%/}
case "$NODE_MIRROR" in http://* | https://*) ;; *) die "--node-mirror must be an http(s) URL, got $NODE_MIRROR" ;; esac
if [ -z "$NODE_VERSION" ]; then
	case "$NODE_VERSION_DEFAULT" in @*) ;; *) NODE_VERSION=$NODE_VERSION_DEFAULT ;; esac
fi
NODE_VERSION=${NODE_VERSION#v}
if [ -n "$ROOT" ]; then
	ROOT=$(cd "$ROOT" && pwd) || die "--root $ROOT is not a folder"
	[ "$ROOT" != / ] || ROOT=''
fi

OPT=$ROOT/opt/fleet-agent
ETC=$ROOT/etc/fleet-agent
STATE=$ROOT/var/lib/fleet-agent
UNIT=$ROOT/etc/systemd/system/$SERVICE.service
MANIFEST=$OPT/installed
PODMAN_DROPIN_DIR=$ROOT/etc/systemd/system/podman.socket.d

[ "$(id -u)" -eq 0 ] || die "must run as root (pipe it to sudo sh)"

# --- what this host is ---------------------------------------------------------------------------

arch() {
	case "$(uname -m)" in
	x86_64 | amd64) echo x86_64 ;;
	aarch64 | arm64) echo aarch64 ;;
	*) die "unsupported architecture $(uname -m): the agent runs on x86_64 and aarch64" ;;
	esac
}

os_name() {
	if [ -r /etc/os-release ]; then
		# shellcheck disable=SC1091
		(. /etc/os-release && echo "${PRETTY_NAME:-${NAME:-linux}}")
	else
		uname -s
	fi
}

# glibc version as "major.minor", empty when the C library is not glibc.
glibc_version() {
	v=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed -n 's/^glibc \([0-9]*\.[0-9]*\).*/\1/p')
	[ -n "$v" ] || v=$(ldd --version 2>/dev/null | sed -n '1s/.* \([0-9][0-9]*\.[0-9][0-9]*\)$/\1/p')
	echo "$v"
}

# True when version $1 >= $2 (major.minor).
version_at_least() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, "."); split(b, y, "."); exit !((x[1] > y[1]) || (x[1] == y[1] && x[2] >= y[2])) }'
}

has_systemd() { [ -d /run/systemd/system ]; }

# The engine socket's path as the agent sees it (inside --root when given).
find_engine_socket() {
	if [ -n "$ENGINE_SOCKET" ]; then
		[ -S "$ROOT$ENGINE_SOCKET" ] || die "no engine socket at $ROOT$ENGINE_SOCKET"
		echo "$ENGINE_SOCKET"
		return
	fi
	for s in /var/run/docker.sock /run/docker.sock /run/podman/podman.sock; do
		if [ -S "$ROOT$s" ]; then
			echo "$s"
			return
		fi
	done
	die "no container engine found (no /var/run/docker.sock nor /run/podman/podman.sock): install Docker Engine or Podman (systemctl enable --now podman.socket) first, or name it with --engine-socket"
}

fetch() { # url file
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL --retry 3 -o "$2" "$1"
	elif command -v wget >/dev/null 2>&1; then
		wget -q -O "$2" "$1"
	else
		die "neither curl nor wget is installed"
	fi
}

sha256_of() { # file
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d ' ' -f 1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d ' ' -f 1
	else
		die "neither sha256sum nor shasum is installed: cannot check the Node.js download"
	fi
}

# The Node.js runtime into $TMP/node.tar.gz: the control plane's copy for this architecture, else the
# official build from the mirror, refused unless it matches the mirror's SHASUMS256.txt.
fetch_runtime() {
	if fetch "$URL/install/node-$ARCH.tar.gz" "$TMP/node.tar.gz" 2>/dev/null; then
		return
	fi
	[ -n "$NODE_VERSION" ] || die "the control plane has no Node.js runtime for $ARCH: name the version to download with --node-version"
	case "$ARCH" in x86_64) node_arch=x64 ;; aarch64) node_arch=arm64 ;; esac
	file=node-v$NODE_VERSION-linux-$node_arch.tar.gz
	say "the control plane has no Node.js runtime for $ARCH: downloading $file from $NODE_MIRROR"
	fetch "$NODE_MIRROR/v$NODE_VERSION/SHASUMS256.txt" "$TMP/SHASUMS256.txt" ||
		die "could not download $NODE_MIRROR/v$NODE_VERSION/SHASUMS256.txt"
	expected=$(awk -v f="$file" '$2 == f { print $1; exit }' "$TMP/SHASUMS256.txt")
	[ -n "$expected" ] || die "$NODE_MIRROR/v$NODE_VERSION/SHASUMS256.txt does not list $file"
	fetch "$NODE_MIRROR/v$NODE_VERSION/$file" "$TMP/node.tar.gz" || die "could not download $NODE_MIRROR/v$NODE_VERSION/$file"
	actual=$(sha256_of "$TMP/node.tar.gz")
	[ "$actual" = "$expected" ] || die "$file does not match its SHA-256 in SHASUMS256.txt (got $actual, want $expected): not installed"
	say "$file matches SHASUMS256.txt"
}

engine_cli() {
	for c in docker podman; do
		if command -v "$c" >/dev/null 2>&1; then
			echo "$c"
			return
		fi
	done
	die "the host cannot run the agent as a service and has no docker or podman command to run its container image"
}

# --- uninstall ----------------------------------------------------------------------------------

uninstall() {
	if [ -z "$ROOT" ] && has_systemd && [ -f "$UNIT" ]; then
		systemctl disable --now "$SERVICE" >/dev/null 2>&1 || true
	fi
	if [ -f "$MANIFEST" ] && grep -q '^mode=container$' "$MANIFEST"; then
		cli=$(engine_cli)
		"$cli" rm -f "$CONTAINER" >/dev/null 2>&1 || true
		"$cli" volume rm "$CONTAINER-state" >/dev/null 2>&1 || true
		"$cli" rmi "$IMAGE_REF" >/dev/null 2>&1 || true
	fi
	rm -f "$UNIT"
	if [ -f "$PODMAN_DROPIN_DIR/fleet-agent.conf" ]; then
		rm -f "$PODMAN_DROPIN_DIR/fleet-agent.conf"
		rmdir "$PODMAN_DROPIN_DIR" 2>/dev/null || true
		[ -n "$ROOT" ] || ! has_systemd || { systemctl daemon-reload && systemctl restart podman.socket; } || true
	fi
	[ -n "$ROOT" ] || ! has_systemd || systemctl daemon-reload || true
	if [ -f "$MANIFEST" ] && grep -q '^user_created=1$' "$MANIFEST"; then
		userdel ${ROOT:+--root "$ROOT"} "$AGENT_USER" 2>/dev/null || true
		groupdel ${ROOT:+--root "$ROOT"} "$AGENT_USER" 2>/dev/null || true
	fi
	if [ -f "$MANIFEST" ]; then
		group=$(sed -n 's/^group_created=//p' "$MANIFEST")
		[ -z "$group" ] || groupdel ${ROOT:+--root "$ROOT"} "$group" 2>/dev/null || true
	fi
	new_dirs=''
	[ ! -f "$MANIFEST" ] || new_dirs=$(sed -n 's/^new_dirs=//p' "$MANIFEST")
	rm -rf "$OPT" "$ETC" "$STATE"
	# Deepest first; rmdir leaves any that something else has filled since.
	for d in $(echo "$new_dirs" | tr ' ' '\n' | sort -r); do
		rmdir "$ROOT$d" 2>/dev/null || true
	done
	say "removed the fleet agent"
}

if [ "$UNINSTALL" -eq 1 ]; then
	uninstall
	exit 0
fi

# --- install or upgrade -------------------------------------------------------------------------

ARCH=$(arch)
GLIBC=$(glibc_version)
SOCKET=$(find_engine_socket)
say "host: $(os_name), $ARCH, glibc ${GLIBC:-none}, engine socket $SOCKET"

if [ "$MODE" = auto ]; then
	MODE=systemd
	if [ -z "$GLIBC" ] || ! version_at_least "$GLIBC" "$MIN_GLIBC"; then
		say "this host's C library (glibc ${GLIBC:-none}) is older than the $MIN_GLIBC Node.js 24 needs: running the agent container image instead"
		MODE=container
	elif [ -z "$ROOT" ] && ! has_systemd; then
		say "this host does not run systemd: running the agent container image instead"
		MODE=container
	fi
fi

if [ -z "$TOKEN" ] && ! [ -f "$ETC/agent.env" ] && ! [ -f "$MANIFEST" ]; then
	die "--token is required on a first install (GET /api/swarm/join-token gives one)"
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# Writes the agent's settings; an upgrade without --token keeps the earlier file (the node then
# holds its own credential in the state folder).
write_env() { # file state-dir docker-host
	if [ -z "$TOKEN" ] && [ -f "$1" ]; then
		return
	fi
	umask 077
	{
		echo "FLEET_URL=$URL"
		[ -z "$NAME" ] || echo "FLEET_NODE_NAME=$NAME"
		[ -z "$CLUSTER" ] || echo "FLEET_CLUSTER=$CLUSTER"
		[ -z "$LABELS" ] || echo "FLEET_LABELS=$LABELS"
		[ -z "$TOKEN" ] || echo "FLEET_JOIN_TOKEN=$TOKEN"
		echo "FLEET_STATE_DIR=$2"
		echo "DOCKER_HOST=unix://$3"
	} >"$1.new"
	mv "$1.new" "$1"
	umask 022
}

# Parent folders that do not exist yet (relative to the root), kept in the manifest so --uninstall
# removes them again and no folder that was there before.
NEW_DIRS=''
note_new_dirs() {
	if [ -f "$MANIFEST" ]; then
		NEW_DIRS=$(sed -n 's/^new_dirs=//p' "$MANIFEST")
		return
	fi
	for d in /opt /var /var/lib /etc/systemd /etc/systemd/system; do
		[ -d "$ROOT$d" ] || NEW_DIRS="$NEW_DIRS $d"
	done
}

install_container() {
	cli=$(engine_cli)
	say "downloading the agent image for $ARCH"
	fetch "$URL/install/agent-image-$ARCH.tar" "$TMP/image.tar"
	"$cli" load -i "$TMP/image.tar" >/dev/null
	note_new_dirs
	mkdir -p "$OPT" "$ETC"
	write_env "$ETC/agent.env" /var/lib/fleet-agent /var/run/docker.sock
	"$cli" rm -f "$CONTAINER" >/dev/null 2>&1 || true
	"$cli" run -d --name "$CONTAINER" --restart=always --network host \
		--env-file "$ETC/agent.env" \
		-v "$ROOT$SOCKET:/var/run/docker.sock" \
		-v "$CONTAINER-state:/var/lib/fleet-agent" \
		"$IMAGE_REF" >/dev/null
	printf 'mode=container\nuser_created=0\nnew_dirs=%s\n' "$NEW_DIRS" >"$MANIFEST"
	say "the agent runs in the container $CONTAINER ($cli logs -f $CONTAINER)"
}

# The agent trusts the host's CA certificates (--use-openssl-ca, agent/node-flags.ts) where its
# OpenSSL looks for them: /etc/ssl/certs, one file per CA read when a connection needs it (Debian,
# Ubuntu, JetPack, SUSE, Arch), and /etc/ssl/cert.pem. Prints the unit's line naming the host's bundle
# when it is elsewhere (RHEL, Amazon Linux), or Node.js's own roots, written beside the agent, when
# the host has none.
ca_store() {
	if ls "$ROOT"/etc/ssl/certs/*.0 >/dev/null 2>&1 || [ -e "$ROOT/etc/ssl/cert.pem" ]; then
		return
	fi
	for f in /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/certs/ca-certificates.crt /etc/ssl/ca-bundle.pem; do
		if [ -f "$ROOT$f" ]; then
			echo "Environment=SSL_CERT_FILE=$f"
			return
		fi
	done
	"$OPT/bin/node" -p "require('tls').rootCertificates.join('\\n')" >"$OPT/ca.pem"
	chmod 644 "$OPT/ca.pem"
	echo "Environment=SSL_CERT_FILE=/opt/fleet-agent/ca.pem"
}

install_systemd() {
	say "downloading the agent and the Node.js runtime for $ARCH"
	fetch "$URL/install/agent.mjs" "$TMP/agent.mjs"
	# ssh2, bundled apart: loaded by host.install only (agent/build.ts).
	fetch "$URL/install/agent-ssh2.cjs" "$TMP/agent-ssh2.cjs"
	fetch_runtime
	mkdir -p "$TMP/node"
	tar -xzf "$TMP/node.tar.gz" -C "$TMP/node"
	# bin/node; package/bin/node as npm pack gives the registry's node-linux-<arch> package;
	# node-v<version>-linux-<arch>/bin/node as the official builds hold it.
	node_bin=$TMP/node/bin/node
	[ -x "$node_bin" ] || node_bin=$TMP/node/package/bin/node
	[ -x "$node_bin" ] || node_bin=$(find "$TMP/node" -path '*/bin/node' -type f | head -n 1)
	[ -n "$node_bin" ] || die "the runtime archive holds no bin/node"
	[ -x "$node_bin" ] || die "the runtime archive holds no bin/node"
	"$node_bin" --version >/dev/null 2>&1 || die "the downloaded Node.js does not run on this host"

	user_created=0
	restart_podman_socket=0
	group_created=''
	if [ -f "$MANIFEST" ]; then
		grep -q '^user_created=1$' "$MANIFEST" && user_created=1
		group_created=$(sed -n 's/^group_created=//p' "$MANIFEST")
	fi
	if ! grep -q "^$AGENT_USER:" "$ROOT/etc/passwd" 2>/dev/null; then
		useradd ${ROOT:+--root "$ROOT"} --system --user-group --no-create-home \
			--home-dir /var/lib/fleet-agent --shell /usr/sbin/nologin "$AGENT_USER"
		user_created=1
	fi
	# The engine socket's group lets the agent drive the engine without being root.
	supplementary=''
	if [ "$(stat -L -c %g "$ROOT$SOCKET")" != 0 ]; then
		sock_gid=$(stat -L -c %g "$ROOT$SOCKET")
		# The group's name where the agent runs (under --root: that root's, not this host's).
		sock_group=$(awk -F: -v g="$sock_gid" '$3 == g { print $1; exit }' "$ROOT/etc/group")
		if [ -z "$sock_group" ]; then
			sock_group=$(stat -L -c %G "$ROOT$SOCKET")
			[ "$sock_group" != UNKNOWN ] || sock_group=fleet-engine
			groupadd ${ROOT:+--root "$ROOT"} --system --gid "$sock_gid" "$sock_group"
			group_created=$sock_group
		fi
		usermod ${ROOT:+--root "$ROOT"} -a -G "$sock_group" "$AGENT_USER"
		supplementary="SupplementaryGroups=$sock_group"
	elif [ "$SOCKET" = /run/podman/podman.sock ]; then
		# Rootful Podman's socket is root's alone: its socket unit hands it to the agent's group.
		mkdir -p "$PODMAN_DROPIN_DIR"
		printf '[Socket]\nSocketGroup=%s\nSocketMode=0660\n' "$AGENT_USER" >"$PODMAN_DROPIN_DIR/fleet-agent.conf"
		restart_podman_socket=1
	else
		die "only root can open the engine socket $SOCKET: give it a group (Docker Engine's is docker) and run again"
	fi

	# Replace the files whole: a running service keeps its open copies until the restart below.
	note_new_dirs
	mkdir -p "$OPT/bin" "$ETC" "$STATE" "$(dirname "$UNIT")"
	cp "$node_bin" "$OPT/bin/node.new" && mv "$OPT/bin/node.new" "$OPT/bin/node"
	cp "$TMP/agent.mjs" "$OPT/agent.mjs.new" && mv "$OPT/agent.mjs.new" "$OPT/agent.mjs"
	cp "$TMP/agent-ssh2.cjs" "$OPT/agent-ssh2.cjs.new" && mv "$OPT/agent-ssh2.cjs.new" "$OPT/agent-ssh2.cjs"
	chmod 755 "$OPT/bin/node"
	chmod 644 "$OPT/agent.mjs" "$OPT/agent-ssh2.cjs"
	chown "$AGENT_USER:$AGENT_USER" "$STATE" 2>/dev/null ||
		chown "$(awk -F: -v u="$AGENT_USER" '$1 == u { print $3 ":" $4 }' "$ROOT/etc/passwd")" "$STATE"
	chmod 700 "$STATE"
	write_env "$ETC/agent.env" /var/lib/fleet-agent "$SOCKET"
	chmod 600 "$ETC/agent.env"
	ca_env=$(ca_store)

	cat >"$UNIT" <<EOF
[Unit]
Description=Fleet agent (control plane $URL)
Documentation=$URL/docs
Wants=network-online.target
After=network-online.target docker.service podman.socket

[Service]
Type=simple
User=$AGENT_USER
Group=$AGENT_USER
${supplementary}
EnvironmentFile=/etc/fleet-agent/agent.env
# Memory over speed (agent/node-flags.ts says why each).
Environment=MALLOC_ARENA_MAX=1
Environment=MALLOC_TRIM_THRESHOLD_=131072
Environment=MALLOC_MMAP_THRESHOLD_=131072
Environment=NODE_COMPILE_CACHE=/var/lib/fleet-agent/compile-cache
${ca_env}
ExecStart=/opt/fleet-agent/bin/node --max-semi-space-size=1 --max-old-space-size=128 --v8-pool-size=1 --no-opt --no-maglev --optimize-for-size --single-threaded --bytecode-old-age=1 --no-sparkplug --expose-gc --use-openssl-ca /opt/fleet-agent/agent.mjs
Restart=on-failure
RestartSec=5
StandardOutput=journal
StandardError=journal
SyslogIdentifier=fleet-agent
NoNewPrivileges=true
ProtectSystem=full
ReadWritePaths=/var/lib/fleet-agent

[Install]
WantedBy=multi-user.target
EOF
	# The first run writes V8's code cache of the bundle, so the service's starts skip parsing it
	# (agent/node-flags.ts); the service's user owns it.
	rm -rf "$STATE/compile-cache"
	version=$(NODE_COMPILE_CACHE="$STATE/compile-cache" "$OPT/bin/node" "$OPT/agent.mjs" --version)
	if [ -d "$STATE/compile-cache" ]; then
		chown -R "$AGENT_USER:$AGENT_USER" "$STATE/compile-cache" 2>/dev/null ||
			chown -R "$(awk -F: -v u="$AGENT_USER" '$1 == u { print $3 ":" $4 }' "$ROOT/etc/passwd")" "$STATE/compile-cache"
	fi
	printf 'mode=systemd\nuser_created=%s\ngroup_created=%s\nnew_dirs=%s\nversion=%s\n' "$user_created" "$group_created" "$NEW_DIRS" \
		"$version" >"$MANIFEST"

	if [ -n "$ROOT" ]; then
		say "installed into $ROOT (nothing started: --root)"
		return
	fi
	systemctl daemon-reload
	[ "$restart_podman_socket" -eq 0 ] || systemctl restart podman.socket
	systemctl enable "$SERVICE" >/dev/null 2>&1
	# An upgrade restarts a running agent: the marker tells it not to take its node offline (agent/state.ts).
	! systemctl is-active --quiet "$SERVICE" || touch "$STATE/restarting" || true
	systemctl restart "$SERVICE"
	say "the agent runs as the service $SERVICE (journalctl -u $SERVICE -f)"
}

if [ -f "$MANIFEST" ]; then
	previous=$(sed -n 's/^mode=//p' "$MANIFEST")
	if [ -n "$previous" ] && [ "$previous" != "$MODE" ]; then
		die "the agent is installed here as $previous; run with --uninstall first to switch to $MODE"
	fi
	say "upgrading the agent in place"
fi

if [ "$MODE" = container ]; then install_container; else install_systemd; fi
