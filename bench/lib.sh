# Shared set-up of the shell benchmarks, sourced (after `cd` to the
# project's root) by bench/intake.sh, bench/history-scale.sh and
# bench/retention.sh:
#
#   needs TOOL...      installs the Debian packages of the tools missing
#   build_tako         sets $tako: TAKO_BIN, or a release build
#   build_seed         sets $seed: SEED_BIN, or the seed_history example
#   pin0, pin1         `taskset -c 0` / `-c 1` prefixes (empty without taskset)
#   work               a temp directory, removed on exit
#   server_pid         the server started by the script; stop_server stops it
#                      (TERM to its group, KILL after $stop_ticks × 50 ms),
#                      also on exit
#   free_port          prints a free TCP port on 127.0.0.1
# shellcheck shell=bash

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

needs() {
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      as_root apt-get update -qq && as_root apt-get install -y -qq "$tool"
    fi
  done
}

target=${CARGO_TARGET_DIR:-$PWD/target}

build_tako() {
  if [ -n "${TAKO_BIN:-}" ]; then
    tako=$TAKO_BIN # a binary built earlier (e.g. while the tree is mid-change)
  else
    cargo build --release --quiet -p tako
    tako=$target/release/tako
  fi
}

build_seed() {
  if [ -n "${SEED_BIN:-}" ]; then
    seed=$SEED_BIN
  else
    cargo build --release --quiet -p tako-store --example seed_history
    seed=$target/release/examples/seed_history
  fi
}

pin0=() pin1=()
if command -v taskset >/dev/null; then pin0=(taskset -c 0) pin1=(taskset -c 1); fi

bench=$PWD/bench
work=$(mktemp -d)
server_pid=
stop_ticks=${stop_ticks:-200}
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq "$stop_ticks"); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  server_pid=
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
