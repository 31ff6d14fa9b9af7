# bench/peers.sh's WebSocket parts (sourced by it; issue 16): tracked messages per generator
# CPU-second against the bench's own echo server (examples/ws_echo.rs, one thread, pinned to
# TARGET_CORE), inrush against Tsung (Debian's, installed with apt-get when missing):
#
#   ws-send   fire-and-forget: 50 users, each sends a message with its id every 2 ms for
#             SECONDS_EACH s; inrush tracks each echo as the message's ack by id
#             (bench/peers-ws-send.toml), Tsung sends with ack="no_ack" (peers-ws-send.tsung.xml);
#   ws-burst  fire-and-forget in bursts: the same 25 000 messages/s, each user sending 10 back to
#             back every 20 ms (bench/peers-ws-burst.toml, peers-ws-burst.tsung.xml): inrush
#             writes a burst at once;
#   ws-await  each reply awaited: 50 users, each sends a message and waits for its echo before
#             the next, back to back; inrush's `expect` matches the echo by id and the echo
#             still acks the message (bench/peers-ws-await.toml), Tsung waits for a frame back
#             (its default ack; peers-ws-await.tsung.xml).
#
# FLOOR=1 adds a third tool to ws-send, "floor" (examples/ws_floor.rs): the same sockets and
# messages with nothing but one write per message and one read per socket per tick — the
# kernel's share alone, an upper bound on what any generator does per CPU-second here.
#
# Per run: frames the echo server received (= messages sent) and echoed, counted by the server
# itself and written when the bench stops it; the tool's own count beside them (inrush:
# messages.acked; Tsung: its own request count where it keeps one); generator CPU as for HTTP.
# Uses peers.sh's OUT, RESULTS, PY, ROOT, SECONDS_EACH, QUIET_WAIT, the cores and `log`.

ws_tools() {
  command -v tsung >/dev/null || apt_install tsung
  if [[ -n ${ECHO_BIN:-} ]]; then
    ECHO=$ECHO_BIN
  else
    log "building the echo server (release, examples/ws_echo.rs)"
    cargo build --release --locked --quiet --example ws_echo
    ECHO=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/ws_echo
  fi
  if [[ ${FLOOR:-0} == 1 ]]; then
    cargo build --release --locked --quiet --example ws_floor
    WS_FLOOR=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/ws_floor
  fi
  WS_TMP=$(mktemp -d)
  ECHO_PID=""
  python3 "$PY" meta "$RESULTS" "tsung=$(dpkg-query -W -f='${Version}' tsung 2>/dev/null || echo '?')"
}

start_echo() {  # start_echo COUNTS_FILE: the server on TARGET_CORE; sets ECHO_PID and WS_PORT
  rm -f "$1" "$WS_TMP/echo.out"
  taskset -c "$TARGET_CORE" "$ECHO" 127.0.0.1:0 "$1" >"$WS_TMP/echo.out" 2>&1 &
  ECHO_PID=$!
  WS_PORT=""
  for _ in $(seq 100); do
    WS_PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$WS_TMP/echo.out")
    [[ -n $WS_PORT ]] && return 0
    sleep 0.05
  done
  log "the echo server did not start: $(cat "$WS_TMP/echo.out")"
  return 1
}

stop_echo() {  # SIGTERM: the server writes its counts and exits
  if [[ -n ${ECHO_PID:-} ]]; then
    kill -TERM "$ECHO_PID" 2>/dev/null || true
    wait "$ECHO_PID" 2>/dev/null || true
    ECHO_PID=""
  fi
}

# ws_one_run WORKLOAD TOOL RUN -- one generator run against a fresh echo server
ws_one_run() {
  local workload=$1 tool=$2 run=$3
  local name="$workload-$tool-$run" counts="$OUT/runs/$workload-$tool-$run.counts.json"
  python3 "$ROOT/bench/bench.py" wait-quiet "$QUIET_WAIT" "$GEN_CORE" "$TARGET_CORE"
  start_echo "$counts" || return 0
  local cmd
  case $tool in
    inrush)
      cmd=("$BIN" run "$ROOT/bench/peers-$workload.toml" --target "http://127.0.0.1:$WS_PORT"
        --duration "${SECONDS_EACH}s" --workers 1 --quiet --accept-overload
        --out "$OUT/runs/$name")
      ;;
    tsung)
      sed -e "s/@PORT@/$WS_PORT/" -e "s/@SECONDS@/$SECONDS_EACH/" \
        "$ROOT/bench/peers-$workload.tsung.xml" >"$WS_TMP/$name.xml"
      mkdir -p "$OUT/runs/$name"
      cmd=(tsung -f "$WS_TMP/$name.xml" -l "$OUT/runs/$name" start)
      ;;
    floor)  # the load of bench/peers-ws-send.toml: 50 sockets, a message every 2 ms each
      cmd=("$WS_FLOOR" "127.0.0.1:$WS_PORT" 50 2ms "${SECONDS_EACH}s")
      ;;
  esac
  log "$workload $tool run $run: ${cmd[*]}"
  TARGET_PID=$ECHO_PID timeout $((SECONDS_EACH + 60)) \
    python3 "$PY" measure "$OUT/runs/$name.json" taskset -c "$GEN_CORE" "${cmd[@]}" \
    >"$OUT/logs/$name.out" 2>&1 || true
  stop_echo
  local received echoed own errors
  read -r received echoed < <(python3 "$PY" echo-counts "$counts")
  case $tool in
    inrush) read -r own errors < <(python3 "$PY" ws-summary-counts "$OUT/runs/$name/summary.json") ;;
    tsung) read -r own errors < <(python3 "$PY" tsung-count "$OUT/runs/$name") ;;
    floor) read -r own errors < <(python3 "$PY" floor-count "$OUT/logs/$name.out") ;;
  esac
  python3 "$PY" record "$RESULTS" "$OUT/runs/$name.json" "workload=$workload" "tool=$tool" \
    "run=$run" "served=$received" "echoed=$echoed" "own_count=$own" "errors=$errors"
  log "  echo server: $received received, $echoed echoed; tool counted $own, errors $errors"
}

ws_runs() {  # ws_runs RUN: the WebSocket parts named in PARTS, tools alternating
  local run=$1 workload
  for workload in ws-send ws-burst ws-await; do
    if [[ " $PARTS " == *" $workload "* ]]; then
      ws_one_run "$workload" tsung "$run"
      ws_one_run "$workload" inrush "$run"
      if [[ $workload == ws-send && ${FLOOR:-0} == 1 ]]; then
        ws_one_run "$workload" floor "$run"
      fi
    fi
  done
}
