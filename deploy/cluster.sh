#!/usr/bin/env bash
# cluster.sh runs a real classroute cluster on this machine's loopback:
# a three-member etcd cluster (classroute-etcd processes), two classrouted
# daemons sharing it, and three simulated region agents when the CLI has
# them. It needs only Go: the binaries are built from this checkout.
#
#   deploy/cluster.sh up       build, start what does not run (all of it, or what
#                              was killed), wait until it serves
#   deploy/cluster.sh status   what runs, and whether each daemon serves
#   deploy/cluster.sh down     stop everything (data and logs stay: `up` resumes the cluster)
#   deploy/cluster.sh clean    down, then remove the run directory
#
# Environment:
#   CLASSROUTE_CLUSTER_DIR      run directory (default: .cluster in the checkout; gitignored)
#   CLASSROUTE_CLUSTER_PORT     base port (default 27400): etcd members client/peer
#                               base+1/+2, +3/+4, +5/+6; daemons base+11, +12;
#                               metrics base+21, +22
#   CLASSROUTE_CLUSTER_CATALOG  catalogue YAML for the first start (default: built-in)
#   CLASSROUTE_CLUSTER_NOFSYNC  1: etcd does not fsync (throwaway clusters, tests)
#   CLASSROUTE_CLUSTER_TIMEOUT  seconds to wait for each piece to serve (default 60)
#
# Everything listens on 127.0.0.1 in plaintext; for a cluster across
# machines see deploy/README.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${CLASSROUTE_CLUSTER_DIR:-$root/.cluster}
base=${CLASSROUTE_CLUSTER_PORT:-27400}
timeout=${CLASSROUTE_CLUSTER_TIMEOUT:-60}
host=127.0.0.1
bin=$dir/bin
run=$dir/run # PID files
logs=$dir/logs

members=(m1 m2 m3)
daemons=(d1 d2)
# One simulated agent per region, each talking to one of the daemons.
agent_regions=(aws/us-gov-west-1 azure/usgovvirginia ke-gov/konza-1)

member_client() { echo "$host:$((base + 2 * $1 + 1))"; } # $1: index 0..2
member_peer() { echo "$host:$((base + 2 * $1 + 2))"; }
daemon_listen() { echo "$host:$((base + $1 + 11))"; } # $1: index 0..1
daemon_metrics() { echo "$host:$((base + $1 + 21))"; }

endpoints() {
  local i out=()
  for i in "${!members[@]}"; do out+=("$(member_client "$i")"); done
  (IFS=,; echo "${out[*]}")
}

initial_cluster() {
  local i out=()
  for i in "${!members[@]}"; do out+=("${members[$i]}=http://$(member_peer "$i")"); done
  (IFS=,; echo "${out[*]}")
}

say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }

# running PID: true while the process runs. An exited process whose
# parent (this script, long gone) is not reaped yet is a zombie: not running.
running() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

alive() { # $1: name; true when its PID file names a running process of ours
  [ -f "$run/$1.pid" ] || return 1
  local pid argv0
  pid=$(cat "$run/$1.pid")
  running "$pid" || return 1
  # A PID file outliving its process may name an unrelated process that
  # reused the PID: ours run a binary of $bin.
  argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1) || return 0
  [ -z "$argv0" ] || [ "${argv0#"$bin/"}" != "$argv0" ]
}

started=()     # what this `up` started: a failed `up` stops these, and only these
declare -A log_from # name: the size of its log when this `up` started it

# start NAME CMD ARGS...: runs CMD in the background in its own session,
# appending to logs/NAME.log, and records its PID. When NAME already
# runs, it leaves it running and does nothing.
start() {
  local name=$1
  shift
  if alive "$name"; then
    say "$name already runs (pid $(cat "$run/$name.pid")); leaving it"
    return 0
  fi
  touch "$logs/$name.log"
  log_from[$name]=$(wc -c <"$logs/$name.log") # readiness checks read this start's lines only
  setsid "$@" </dev/null >>"$logs/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
  started+=("$name")
}

was_started() { [[ " ${started[*]} " == *" $1 "* ]]; }

# stop_started stops what this `up` started, the last first.
stop_started() {
  local i
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do stop "${started[$i]}"; done
  say "stopped ${started[*]:-nothing}"
}

# wait_for NAME WHAT CHECK...: retries CHECK until it succeeds, NAME dies,
# or the timeout passes.
wait_for() {
  local name=$1 what=$2 deadline=$((SECONDS + timeout))
  shift 2
  until "$@" >/dev/null 2>&1; do
    alive "$name" || die "$name exited before $what; its log, $logs/$name.log, ends:
$(tail -n 20 "$logs/$name.log")"
    [ "$SECONDS" -lt "$deadline" ] || die "$name not $what after ${timeout}s; see $logs/$name.log"
    sleep 0.2
  done
}

member_serving() { grep -q 'msg="member serving"' < <(tail -c +"$((${log_from[$1]:-0} + 1))" "$logs/$1.log"); }
daemon_serving() { "$bin/classroutectl" regions --server "$1" --timeout 2s; }

build() {
  say "building into $bin"
  mkdir -p "$bin"
  (cd "$root" && go build -o "$bin/" ./cmd/classroute-etcd ./cmd/classrouted ./cmd/classroutectl)
}

# Whether the commands built have these flags. The help is read whole
# first: `cmd -h | grep -q` fails under pipefail whenever grep exits
# before cmd has written the rest (SIGPIPE), and the daemon then started
# on the default metrics port, maybe taken.
has_agent_sim() { [[ $("$bin/classroutectl" agent sim -h 2>&1) == *-region* ]]; }
has_metrics() { [[ $("$bin/classrouted" -h 2>&1) == *-metrics-listen* ]]; }

# up starts what does not run and leaves what runs: after a crash, or
# after a member or daemon was killed, it restarts exactly the missing
# processes. If a start fails, it stops what it started, and only that.
up() {
  mkdir -p "$run" "$logs"
  build
  trap 'say "start failed; stopping what this up started" >&2; stop_started >&2' EXIT

  local i name nofsync=() cluster
  [ "${CLASSROUTE_CLUSTER_NOFSYNC:-}" = 1 ] && nofsync=(--unsafe-no-fsync)
  cluster=$(initial_cluster)
  for i in "${!members[@]}"; do
    name=${members[$i]}
    mkdir -p "$dir/etcd/$name"
    # On its data directory a member rejoins its cluster; the
    # --initial-cluster flags count only for the first start.
    start "$name" "$bin/classroute-etcd" --name "$name" --data-dir "$dir/etcd/$name" \
      --client-addr "$(member_client "$i")" --peer-addr "$(member_peer "$i")" \
      --initial-cluster "$cluster" --initial-cluster-token classroute-local "${nofsync[@]}"
  done
  for name in "${members[@]}"; do
    if was_started "$name"; then wait_for "$name" "serving" member_serving "$name"; fi
  done
  say "etcd cluster serving at $(endpoints)"

  local extra=()
  [ -n "${CLASSROUTE_CLUSTER_CATALOG:-}" ] && extra+=(--catalog "$CLASSROUTE_CLUSTER_CATALOG")
  for i in "${!daemons[@]}"; do
    name=${daemons[$i]}
    local metrics=()
    has_metrics && metrics=(--metrics-listen "$(daemon_metrics "$i")")
    start "$name" "$bin/classrouted" --listen "$(daemon_listen "$i")" \
      --data-dir "$dir/$name" --etcd "$(endpoints)" "${metrics[@]}" "${extra[@]}"
    # The first daemon seeds the catalogue; start the second once it
    # has. A daemon left running serves again once etcd has a quorum.
    wait_for "$name" "serving" daemon_serving "$(daemon_listen "$i")"
  done
  say "daemons serving at $(daemon_listen 0) and $(daemon_listen 1)"

  if has_agent_sim; then
    for i in "${!agent_regions[@]}"; do
      start "agent$((i + 1))" "$bin/classroutectl" agent sim --region "${agent_regions[$i]}" \
        --server "$(daemon_listen $((i % ${#daemons[@]})))"
    done
    sleep 1
    for i in "${!agent_regions[@]}"; do
      alive "agent$((i + 1))" || die "agent$((i + 1)) exited; see $logs/agent$((i + 1)).log"
    done
    say "simulated agents serving ${agent_regions[*]}"
  else
    say "this classroutectl has no 'agent sim': no simulated agents started"
  fi
  trap - EXIT
  say "started ${started[*]:-nothing: everything already ran}"

  local ctl="$bin/classroutectl" again=$0
  [ -n "${CLASSROUTE_CLUSTER_DIR:-}" ] && again="CLASSROUTE_CLUSTER_DIR=$dir $again"
  [ -n "${CLASSROUTE_CLUSTER_PORT:-}" ] && again="CLASSROUTE_CLUSTER_PORT=$base $again"
  cat <<EOF

classroute cluster up (run directory $dir):
  etcd members   $(endpoints)
  daemons        $(daemon_listen 0)  $(daemon_listen 1)
  logs           $logs/

Try:
  $ctl regions --server $(daemon_listen 0)
  $ctl place -f $root/examples/aukus-secret.yaml --request-id demo-1 --server $(daemon_listen 0)
  $ctl get demo-1 --server $(daemon_listen 1)
EOF
  if "$ctl" watch --help >/dev/null 2>&1; then
    echo "  $ctl watch --server $(daemon_listen 1)"
  fi
  cat <<EOF
  (or export CLASSROUTE_SERVER=$(daemon_listen 0) and drop --server)

  $again status
  $again down
EOF
}

# stop NAME: SIGTERM, then SIGKILL after 15 s.
stop() {
  local name=$1 pid i
  [ -f "$run/$name.pid" ] || return 0
  pid=$(cat "$run/$name.pid")
  if running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 150); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      say "$name (pid $pid) ignored SIGTERM for 15s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$run/$name.pid"
}

down() {
  local name i
  for i in "${!agent_regions[@]}"; do stop "agent$((i + 1))"; done
  for name in "${daemons[@]}"; do stop "$name"; done
  # One at a time: a stopping leader hands over to a peer that still runs.
  for name in "${members[@]}"; do stop "$name"; done
  say "stopped"
}

status() {
  local name i rc=0 out
  for name in "${members[@]}" "${daemons[@]}" agent1 agent2 agent3; do
    if alive "$name"; then
      printf '%-7s running (pid %s)\n' "$name" "$(cat "$run/$name.pid")"
    elif [ -f "$run/$name.pid" ]; then
      printf '%-7s dead (see %s)\n' "$name" "$logs/$name.log"
      rc=1
    fi
  done
  for i in "${!daemons[@]}"; do
    if out=$("$bin/classroutectl" regions --server "$(daemon_listen "$i")" --timeout 2s 2>&1); then
      # A table: a header line, then one line per region.
      printf '%-7s %s serving, %s regions\n' "${daemons[$i]}" "$(daemon_listen "$i")" "$(($(wc -l <<<"$out") - 1))"
    else
      printf '%-7s %s not serving: %s\n' "${daemons[$i]}" "$(daemon_listen "$i")" "$(head -n 1 <<<"$out")"
      rc=1
    fi
  done
  return $rc
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
clean)
  down
  rm -rf "$dir"
  say "removed $dir"
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
