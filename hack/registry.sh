#!/usr/bin/env bash
# Starts or stops the local test registry (Debian's docker-registry) that
# serves the e2e and critest images on ${REGISTRY_ADDR:-127.0.0.1:5000}.
#
#   hack/registry.sh start   start it unless it already answers; idempotent
#   hack/registry.sh stop    stop the registry this script started (by the
#                            PID it recorded), never any other process
#   hack/registry.sh status  exit 0 when the registry answers
#
# Its config, storage, log and PID file live in ${REGISTRY_DIR:-<repo>/_output/registry}.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
ADDR=${REGISTRY_ADDR:-127.0.0.1:5000}
DIR=${REGISTRY_DIR:-$repo/_output/registry}
PIDFILE=$DIR/registry.pid

log() { echo "hack/registry: $*" >&2; }
answers() { curl -fsS -o /dev/null --max-time 2 "http://$ADDR/v2/" 2>/dev/null; }
ours() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
	if answers; then
		ours && log "already running (pid $(cat "$PIDFILE"))" || log "a registry already answers on $ADDR (not started by this script): using it"
		return 0
	fi
	command -v docker-registry >/dev/null || { log "docker-registry missing: run hack/install-test-tools.sh"; exit 1; }
	mkdir -p "$DIR/storage"
	cat >"$DIR/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DIR/storage
  delete:
    enabled: true
http:
  addr: $ADDR
CONFIG
	# setsid: the registry outlives this shell and ignores its hangup.
	setsid docker-registry serve "$DIR/config.yml" >>"$DIR/registry.log" 2>&1 </dev/null &
	echo $! >"$PIDFILE"
	for _ in $(seq 1 100); do
		if answers; then
			log "started on $ADDR (pid $(cat "$PIDFILE"), storage $DIR/storage)"
			return 0
		fi
		ours || break
		sleep 0.1
	done
	log "registry did not come up; last log lines:"
	tail -n 20 "$DIR/registry.log" >&2 || true
	exit 1
}

stop() {
	if ! ours; then
		rm -f "$PIDFILE"
		log "not running (no live PID recorded in $PIDFILE)"
		return 0
	fi
	pid=$(cat "$PIDFILE")
	kill -TERM "$pid"
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
	rm -f "$PIDFILE"
	log "stopped (pid $pid)"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) answers ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
