#!/usr/bin/env bash
# Starts the services the integration suites need: a Docker-compatible engine (Podman's API
# service), Docker Engine (Debian's dockerd, for the second pass of the engine suites), an AWS API
# emulator (moto server) and a Docker Registry (HTTP API v2, Debian's docker-registry). Needs
# podman, runc, docker.io, docker-registry and .venv-aws (see .ci/run).
#
#   eval "$(.ci/services.sh)"      start both (or reuse running ones), print the exports
#   .ci/services.sh stop           stop what an earlier start launched
#   . .ci/services.sh              define services_start / services_stop / services_exports
#
# Settings: FLEET_ENGINE_SOCK (/tmp/fleet-engine.sock), FLEET_DOCKERD_SOCK (/tmp/fleet-dockerd.sock),
# FLEET_DOCKERD_ROOT (/tmp/fleet-dockerd: data and exec roots), MOTO_HOST (127.0.0.1), MOTO_PORT (4566),
# REGISTRY_ADDR (127.0.0.1:5000), SERVICES_WAIT_SECONDS (60). Logs and pid files live in .ci/state/.

FLEET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FLEET_STATE="${FLEET_ROOT}/.ci/state"
FLEET_ENGINE_SOCK="${FLEET_ENGINE_SOCK:-/tmp/fleet-engine.sock}"
FLEET_DOCKERD_SOCK="${FLEET_DOCKERD_SOCK:-/tmp/fleet-dockerd.sock}"
# Outside the repository: containerd's socket paths under the exec root must stay short.
FLEET_DOCKERD_ROOT="${FLEET_DOCKERD_ROOT:-/tmp/fleet-dockerd}"
MOTO_HOST="${MOTO_HOST:-127.0.0.1}"
MOTO_PORT="${MOTO_PORT:-4566}"
REGISTRY_ADDR="${REGISTRY_ADDR:-127.0.0.1:5000}"
SERVICES_WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-60}"

_svc_log() { echo "[services] $*" >&2; }

# The default runtime (crun) fails on these hosts (hybrid cgroups, no CAP_SYS_RESOURCE): use runc + cgroupfs.
services_write_containers_conf() {
  mkdir -p "$FLEET_STATE"
  cat >"$FLEET_STATE/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
}

# The registry of the build suites: plain HTTP on loopback, storage under .ci/state, no auth.
# Podman pushes to it over HTTP only when it is listed as insecure: registries.conf below, passed
# through CONTAINERS_REGISTRIES_CONF to the engine (and to the suites, for podman CLI calls).
services_write_registry_conf() {
  mkdir -p "$FLEET_STATE/registry"
  cat >"$FLEET_STATE/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $FLEET_STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  cat >"$FLEET_STATE/registries.conf" <<EOF
unqualified-search-registries = []
[[registry]]
location = "$REGISTRY_ADDR"
insecure = true
EOF
}

_registry_answers() { curl -fsS --max-time 2 -o /dev/null "http://${REGISTRY_ADDR}/v2/" 2>/dev/null; }

_engine_answers() { curl -fsS --max-time 2 --unix-socket "$FLEET_ENGINE_SOCK" http://d/_ping >/dev/null 2>&1; }
_dockerd_answers() { curl -fsS --max-time 2 --unix-socket "$FLEET_DOCKERD_SOCK" http://d/_ping >/dev/null 2>&1; }
_moto_answers() { curl -fsS --max-time 2 -o /dev/null "http://${MOTO_HOST}:${MOTO_PORT}/moto-api/" 2>/dev/null; }

# Waits until "$1" (a function) succeeds, at most SERVICES_WAIT_SECONDS; fails early when pid $2 dies.
_svc_wait() {
  local check="$1" pid="$2" name="$3" deadline=$((SECONDS + SERVICES_WAIT_SECONDS))
  until "$check"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      _svc_log "$name exited during start; its log:"
      tail -n 30 "$FLEET_STATE/$name.log" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      _svc_log "$name did not answer within ${SERVICES_WAIT_SECONDS}s; its log:"
      tail -n 30 "$FLEET_STATE/$name.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

_svc_start_engine() {
  if _engine_answers; then
    _svc_log "engine already answers on $FLEET_ENGINE_SOCK; reusing it"
    return 0
  fi
  command -v podman >/dev/null || { _svc_log "podman is not installed (apt-get install podman runc)"; return 1; }
  rm -f "$FLEET_ENGINE_SOCK" # a stale socket from a killed service would block the bind
  # setsid + redirections: the service must not hold the caller's terminal or a $(...) pipe open.
  CONTAINERS_CONF="$FLEET_STATE/containers.conf" CONTAINERS_REGISTRIES_CONF="$FLEET_STATE/registries.conf" \
    setsid podman system service --time=0 \
    "unix://$FLEET_ENGINE_SOCK" </dev/null >"$FLEET_STATE/engine.log" 2>&1 &
  echo $! >"$FLEET_STATE/engine.pid"
  _svc_wait _engine_answers "$!" engine
}

# Stand-ins for NVIDIA's container toolkit, so the GPU paths run on a real Docker Engine without a GPU:
# `nvidia-container-runtime-hook` on dockerd's PATH makes dockerd register its "nvidia" device driver
# (DeviceRequests), and a runtime named "nvidia" wraps runc. Both record the OCI config they were
# given (GPU env, hooks) under nvidia-records/ by container id, then the container runs as usual.
services_write_nvidia_standins() {
  # Beside dockerd's data, not in a checkout: another checkout reusing this dockerd finds the same records.
  local bin="$FLEET_DOCKERD_ROOT/nvidia-bin" records="$FLEET_DOCKERD_ROOT/nvidia-records"
  mkdir -p "$bin" "$records"
  cat >"$bin/nvidia-container-runtime-hook" <<EOF
#!/bin/sh
# OCI prestart hook: the container state (id, bundle path) comes on stdin.
state=\$(cat)
bundle=\$(printf '%s' "\$state" | sed -n 's/.*"bundle": *"\\([^"]*\\)".*/\\1/p')
id=\$(printf '%s' "\$state" | sed -n 's/.*"id": *"\\([^"]*\\)".*/\\1/p')
if [ -n "\$id" ] && [ -f "\$bundle/config.json" ]; then cp "\$bundle/config.json" "$records/hook-\$id.json"; fi
exit 0
EOF
  cat >"$bin/nvidia-runtime" <<EOF
#!/bin/sh
# runc, recording each create: its arguments, and the bundle's config.json under the container id.
bundle=""; prev=""; sub=""; last=""
for a in "\$@"; do
  case "\$prev" in --bundle|-b) bundle="\$a" ;; esac
  case "\$a" in create|run) [ -z "\$sub" ] && sub="\$a" ;; esac
  prev="\$a"; last="\$a"
done
if [ -n "\$sub" ]; then
  printf '%s\\n' "\$*" >>"$records/runtime-args.log"
  if [ -n "\$bundle" ] && [ -f "\$bundle/config.json" ]; then cp "\$bundle/config.json" "$records/runtime-\$last.json"; fi
fi
exec /usr/sbin/runc "\$@"
EOF
  chmod 0755 "$bin/nvidia-container-runtime-hook" "$bin/nvidia-runtime"
}

_svc_start_dockerd() {
  if _dockerd_answers; then
    _svc_log "dockerd already answers on $FLEET_DOCKERD_SOCK; reusing it"
    services_load_dockerd_images
    return
  fi
  [[ -x /usr/sbin/dockerd ]] || { _svc_log "/usr/sbin/dockerd is missing (apt-get install docker.io)"; return 1; }
  services_write_nvidia_standins
  rm -f "$FLEET_DOCKERD_SOCK"
  mkdir -p "$FLEET_DOCKERD_ROOT/data" "$FLEET_DOCKERD_ROOT/exec"
  # No iptables (the host's rules are not ours) and a bridge on a private range of its own.
  PATH="$FLEET_DOCKERD_ROOT/nvidia-bin:$PATH" setsid /usr/sbin/dockerd \
    --data-root "$FLEET_DOCKERD_ROOT/data" --exec-root "$FLEET_DOCKERD_ROOT/exec" \
    --host "unix://$FLEET_DOCKERD_SOCK" --pidfile "$FLEET_DOCKERD_ROOT/dockerd.pid" \
    --iptables=false --bip 172.31.250.1/24 \
    --add-runtime "nvidia=$FLEET_DOCKERD_ROOT/nvidia-bin/nvidia-runtime" \
    </dev/null >"$FLEET_STATE/dockerd.log" 2>&1 &
  echo $! >"$FLEET_STATE/dockerd.pid"
  _svc_wait _dockerd_answers "$!" dockerd || return 1
  services_load_dockerd_images
}

# The busybox test image (test/harness/images.ts builds the same one) imported offline into dockerd:
# no registry is reachable, and suites then find it there already.
services_load_dockerd_images() {
  local ref="localhost/fleet-test:busybox" dir
  if /usr/bin/docker -H "unix://$FLEET_DOCKERD_SOCK" image inspect "$ref" >/dev/null 2>&1; then return 0; fi
  dir="$(mktemp -d)"
  mkdir -p "$dir/rootfs/bin" "$dir/rootfs/tmp" "$dir/rootfs/etc" "$dir/rootfs/proc" "$dir/rootfs/sys" \
    "$dir/rootfs/dev" "$dir/rootfs/www"
  cp "${BUSYBOX_PATH:-/bin/busybox}" "$dir/rootfs/bin/busybox"
  for applet in sh echo sleep cat httpd ls mkdir wget true env; do ln -s busybox "$dir/rootfs/bin/$applet"; done
  tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
  /usr/bin/docker -H "unix://$FLEET_DOCKERD_SOCK" import "$dir/rootfs.tar" "$ref" >/dev/null
  local rc=$?
  rm -rf "$dir"
  return $rc
}

_svc_start_moto() {
  if _moto_answers; then
    _svc_log "moto already answers on ${MOTO_HOST}:${MOTO_PORT}; reusing it"
    return 0
  fi
  local bin="$FLEET_ROOT/.venv-aws/bin/moto_server"
  [[ -x "$bin" ]] || { _svc_log "$bin is missing (python3 -m venv .venv-aws && .venv-aws/bin/pip install 'moto[server]')"; return 1; }
  setsid "$bin" -H "$MOTO_HOST" -p "$MOTO_PORT" </dev/null >"$FLEET_STATE/moto.log" 2>&1 &
  echo $! >"$FLEET_STATE/moto.pid"
  _svc_wait _moto_answers "$!" moto
}

_svc_start_registry() {
  if _registry_answers; then
    _svc_log "registry already answers on ${REGISTRY_ADDR}; reusing it"
    return 0
  fi
  command -v docker-registry >/dev/null || { _svc_log "docker-registry is not installed (apt-get install docker-registry)"; return 1; }
  setsid docker-registry serve "$FLEET_STATE/registry.yml" </dev/null >"$FLEET_STATE/registry.log" 2>&1 &
  echo $! >"$FLEET_STATE/registry.pid"
  _svc_wait _registry_answers "$!" registry
}

services_exports() {
  cat <<EOF
export DOCKER_HOST=unix://${FLEET_ENGINE_SOCK}
export FLEET_DOCKERD_HOST=unix://${FLEET_DOCKERD_SOCK}
export FLEET_NVIDIA_RECORDS=${FLEET_DOCKERD_ROOT}/nvidia-records
export AWS_ENDPOINT_URL=http://${MOTO_HOST}:${MOTO_PORT}
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export REGISTRY_URL=http://${REGISTRY_ADDR}
# The registry is on loopback: the control plane refuses it at start unless the allowlist names it.
export OUTBOUND_ALLOWLIST=${OUTBOUND_ALLOWLIST:-${REGISTRY_ADDR%:*}}
export CONTAINERS_REGISTRIES_CONF=${FLEET_STATE}/registries.conf
EOF
}

# Stops only the processes this script started (by their recorded pids).
services_stop() {
  local name pid
  for name in engine dockerd moto registry; do
    [[ -f "$FLEET_STATE/$name.pid" ]] || continue
    pid="$(cat "$FLEET_STATE/$name.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
      _svc_log "stopped $name (pid $pid)"
    fi
    rm -f "$FLEET_STATE/$name.pid"
  done
}

services_start() {
  command -v curl >/dev/null || { _svc_log "curl is needed to check the services"; return 1; }
  services_write_containers_conf
  services_write_registry_conf
  # A failed start tears down what did start, so a retry begins clean.
  if ! _svc_start_engine || ! _svc_start_dockerd || ! _svc_start_moto || ! _svc_start_registry; then
    services_stop
    return 1
  fi
  _svc_log "engine: unix://$FLEET_ENGINE_SOCK (log .ci/state/engine.log); dockerd: unix://$FLEET_DOCKERD_SOCK (log .ci/state/dockerd.log); moto: http://${MOTO_HOST}:${MOTO_PORT} (log .ci/state/moto.log); registry: http://${REGISTRY_ADDR} (log .ci/state/registry.log)"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  case "${1:-start}" in
    start) services_start && services_exports ;;
    stop) services_stop ;;
    exports) services_exports ;;
    *) echo "usage: $0 [start|stop|exports]" >&2; exit 2 ;;
  esac
fi
