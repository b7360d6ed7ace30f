#!/usr/bin/env bash
# `make livekit-dev`: a real LiveKit on loopback for development: Redis, livekit-server (the
# repository's livekit.yaml moved onto 127.0.0.1 by harness/livekit_stack.py's loopback_config,
# as in the real-room tests: every socket on loopback, media too), livekit-sip where it was built,
# and the tutor's agent worker (`parle agent start`). Beside it, `make run` with the three
# LIVEKIT_* variables printed below: the page's "Chamar por WebRTC" then talks to the tutor
# through a real SFU. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

tool() { if [ -x ".tools/bin/$1" ]; then echo ".tools/bin/$1"; else command -v "$1" || true; fi; }
server=$(tool livekit-server)
sip=$(tool livekit-sip)
if [ -z "$server" ]; then
  echo "livekit-server not found: \`make tools\` builds it (needs Go), or put it on PATH" >&2
  exit 1
fi
if ! command -v redis-server >/dev/null; then
  echo "redis-server not found (Debian: apt-get install redis-server)" >&2
  exit 1
fi

# Development credentials only: the server, the SIP bridge and the page's tokens share them.
export LIVEKIT_URL=ws://127.0.0.1:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret
REDIS_PORT=${PARLE_DEV_REDIS_PORT:-6390}  # not 6379: a system Redis stays untouched
LOGS=$(mktemp -d /tmp/parle-livekit-dev.XXXXXX)

pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >"$LOGS/redis.log" 2>&1 &
pids+=($!)
.venv/bin/python -m harness.livekit_stack "$LOGS/livekit.yaml" --redis "127.0.0.1:$REDIS_PORT"
"$server" --config "$LOGS/livekit.yaml" --dev \
  --keys "$LIVEKIT_API_KEY: $LIVEKIT_API_SECRET" >"$LOGS/livekit-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  curl -sf http://127.0.0.1:7880 >/dev/null 2>&1 && break
  sleep 0.2
done

if [ -n "$sip" ]; then
  sed "s/@REDIS_PORT@/$REDIS_PORT/" scripts/livekit-sip.dev.yaml >"$LOGS/sip.yaml"
  "$sip" --config "$LOGS/sip.yaml" >"$LOGS/livekit-sip.log" 2>&1 &
  pids+=($!)
  sip_line="livekit-sip on sip:127.0.0.1:5060 (create a trunk and a dispatch rule: deploy/sip/)"
else
  sip_line="livekit-sip not built (make tools): no phone calls"
fi

.venv/bin/parle agent start >"$LOGS/agent.log" 2>&1 &
pids+=($!)

cat <<EOF
LiveKit on $LIVEKIT_URL (keys devkey/secret), Redis on 127.0.0.1:$REDIS_PORT, the tutor's agent
worker; $sip_line. Logs: $LOGS
In another terminal:
  LIVEKIT_URL=$LIVEKIT_URL LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret make run
then open http://127.0.0.1:8000/ and press "Chamar por WebRTC". Ctrl-C here stops LiveKit.
EOF
wait -n
echo "a process stopped; logs in $LOGS" >&2
