#!/usr/bin/env bash
# Measures pubsubd beside redis-server, each pinned to core 0 with the
# load generator on core 1, and prints the tables of docs/performance.md.
#
#   bash bench/servers.sh [table|redis-benchmark|fairness|conns|all] [runs]
#
# Needs redis-server, redis-benchmark, redis-cli and taskset (util-linux),
# and two cores. Everything listens on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
runs=${2:-3}
redis_port=7101
pubsubd_port=7102
floor_port=7103
bin=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$bin"
}
trap cleanup EXIT
trap 'echo "servers.sh: line $LINENO failed (status $?)" >&2' ERR
ulimit -n "$(ulimit -Hn)" # 10,000 connections on each side need more than the usual 1,024

go build -o "$bin/pubsubd" ./cmd/pubsubd
go build -o "$bin/pubsub-benchmark" ./cmd/pubsub-benchmark
go build -o "$bin/fairness" ./bench/fairness
go build -o "$bin/conns" ./bench/conns
go build -o "$bin/floor" ./bench/floor

taskset -c 0 redis-server --port $redis_port --bind 127.0.0.1 --save '' --appendonly no \
  --client-output-buffer-limit 'pubsub 0 0 0' >/dev/null &
pids+=($!)
taskset -c 0 "$bin/pubsubd" -port $pubsubd_port -client-output-buffer-limit-pubsub "0 0 0" \
  2>/dev/null &
pids+=($!)
taskset -c 0 "$bin/floor" -port $floor_port &
pids+=($!)
for port in $redis_port $pubsubd_port; do
  for _ in $(seq 100); do
    redis-cli -p $port ping >/dev/null 2>&1 && break
    sleep 0.1
  done
done
targets="pubsubd=127.0.0.1:$pubsubd_port redis=127.0.0.1:$redis_port"

# cell prints "ours / redis-server's = ratio" from pubsub-benchmark's
# medians for one cell of the table, then pubsubd's ratio to the floor
# (bench/floor, a minimal epoll loop in Go) and the generator's CPU where
# it neared its core.
cell() {
  local subs=$1 pubs=$2 pipeline=$3 n
  if [ "$subs" = 0 ]; then
    n=$((200000 / pubs))
    if [ "$pipeline" = 1 ]; then n=$((n / 4)); fi
  else
    n=$((200000 / (subs * pubs)))
    if [ $n -lt 200 ]; then n=200; fi
  fi
  taskset -c 1 "$bin/pubsub-benchmark" -subs "$subs" -pubs "$pubs" -pipeline "$pipeline" \
    -n "$n" -runs "$runs" $targets floor=127.0.0.1:$floor_port | awk -v s="$subs" '
      function rate() { for (i = 1; i <= NF; i++) if ($i == (s == 0 ? "pub/s" : "deliv/s")) return $(i+1) }
      /^  pubsubd/ { ours = rate() }
      /^  redis/   { theirs = rate() }
      /^  floor/   { floor = rate() }
      /gen-cpu/ { for (i = 1; i <= NF; i++) if ($i == "gen-cpu" && $(i+1) > cpu) cpu = $(i+1) }
      /lost [1-9]|disorder [1-9]/ { bad = 1 }
      END {
        printf "%.0f / %.0f = %.2fx, floor %.2fx%s%s", ours, theirs, ours / theirs, ours / floor, (cpu >= 0.9 ? " (gen " cpu ")" : ""), (bad ? " LOSS" : "")
      }'
}

if [ "$what" = table ] || [ "$what" = all ]; then
  echo "| S | P | pipeline 1 | pipeline 16 |"
  echo "| --- | --- | --- | --- |"
  for subs in 0 1 10 100 1000; do
    for pubs in 1 4; do
      echo "| $subs | $pubs | $(cell $subs $pubs 1) | $(cell $subs $pubs 16) |"
    done
  done
fi

# cpu_ticks prints the user and system CPU time a process has used, in
# clock ticks (/proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)
# median prints the median of the numbers in $1, separated by spaces.
median() { echo "$1" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

if [ "$what" = redis-benchmark ] || [ "$what" = all ]; then
  # Each cell also gives the CPU time each server used per request (us,
  # median over the runs: ours / redis-server's / the floor's) and how busy
  # pubsubd's core was. A cell where that core is far from busy is bound
  # by the generator's core (redis-benchmark and the subscribers' redis-cli
  # share it), and its rates say little about the servers.
  declare -A pid_of=([$redis_port]=${pids[0]} [$pubsubd_port]=${pids[1]} [$floor_port]=${pids[2]})
  echo
  echo "| S | clients | no pipelining | -P 16 |"
  echo "| --- | --- | --- | --- |"
  for subs in 0 10 100; do
    subpids=()
    for port in $redis_port $pubsubd_port $floor_port; do
      for _ in $(seq "$subs"); do
        taskset -c 1 redis-cli -p $port subscribe bench >/dev/null &
        subpids+=($!)
      done
    done
    sleep 1
    requests=$((100000 / (1 + subs / 10))) # S = 100 and one client run at a few hundred a second
    for clients in 20 1; do
      row="| $subs | $clients |"
      for pipe in 1 16; do
        declare -A rate=() runs_of=() cpu=() cpu_of=() busy=() busy_of=()
        for _ in $(seq "$runs"); do # alternating runs; the median of each server's
          for port in $pubsubd_port $redis_port $floor_port; do
            before=$(cpu_ticks "${pid_of[$port]}") start=$(date +%s%N)
            if ! out=$(taskset -c 1 redis-benchmark -p $port -c $clients -n $requests -P $pipe -q \
              PUBLISH bench hello 2>&1); then
              echo "redis-benchmark on port $port failed: $(echo "$out" | tr '\r' '\n' | tail -1)" >&2
            fi
            runs_of[$port]+="$(echo "$out" | awk '{ for (i = 1; i <= NF; i++) if ($i == "requests") print $(i-1) }' | tail -1) "
            used=$(($(cpu_ticks "${pid_of[$port]}") - before)) elapsed=$(($(date +%s%N) - start))
            cpu_of[$port]+="$(awk -v t="$used" -v hz="$ticks_per_second" -v n="$requests" 'BEGIN { printf "%.2f", t / hz / n * 1e6 }') "
            busy_of[$port]+="$(awk -v t="$used" -v hz="$ticks_per_second" -v ns="$elapsed" 'BEGIN { printf "%.0f", t / hz / (ns / 1e9) * 100 }') "
          done
        done
        for port in $pubsubd_port $redis_port $floor_port; do
          rate[$port]=$(median "${runs_of[$port]}")
          cpu[$port]=$(median "${cpu_of[$port]}")
          busy[$port]=$(median "${busy_of[$port]}")
        done
        row="$row $(awk -v a="${rate[$pubsubd_port]}" -v b="${rate[$redis_port]}" -v f="${rate[$floor_port]}" \
          -v ca="${cpu[$pubsubd_port]}" -v cb="${cpu[$redis_port]}" -v cf="${cpu[$floor_port]}" -v busy="${busy[$pubsubd_port]}" \
          'BEGIN { printf "%.0f / %.0f = %.2fx, floor %.2fx; CPU %s / %s / %s us, core %s%%", a, b, a / b, a / f, ca, cb, cf, busy }') |"
      done
      echo "$row"
    done
    for p in "${subpids[@]}"; do kill "$p" 2>/dev/null || true; done
  done
fi

if [ "$what" = fairness ] || [ "$what" = all ]; then
  echo
  taskset -c 1 "$bin/fairness" -subs 50 -n 100000 -runs "$runs" $targets
  taskset -c 1 "$bin/fairness" -auth-flood 1000 -for 3s -runs "$runs" $targets floor=127.0.0.1:$floor_port
fi

if [ "$what" = conns ] || [ "$what" = all ]; then
  echo
  with_pids="pubsubd=127.0.0.1:$pubsubd_port@${pids[1]} redis=127.0.0.1:$redis_port@${pids[0]}"
  taskset -c 1 "$bin/conns" -mode idle -n 5000 -runs "$runs" $with_pids
  taskset -c 1 "$bin/conns" -mode burst -n 10000 -runs "$runs" $with_pids
fi
