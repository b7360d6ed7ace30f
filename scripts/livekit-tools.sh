#!/usr/bin/env bash
# livekit-server (the SFU), pinned, built from source with Go into .tools/bin (git-ignored):
# the real-room and browser-WebRTC tests and `make livekit-dev` use it.
#
# livekit-sip and lk are not built: the Go module proxy refuses github.com/livekit/sip and
# livekit-cli at every version ("403 This module version is not available"). The phone path is
# tested with a participant of kind SIP in a real room; deployments run LiveKit's own SIP
# image (deploy/compose.yaml), or `go install` where the module is reachable.
#
# A binary that is already there at its pinned version is not rebuilt. GOPATH and GOCACHE stay
# at Go's defaults, so later runs (and CI on the same machine) reuse the module and build
# caches: a cold build takes 15+ minutes on 2 cores, a warm one seconds.
#
# Never fails `make setup`: without Go, or when a module cannot be fetched or built, it says so
# in one line and the tests that need that binary skip, naming it.
set -uo pipefail
cd "$(dirname "$0")/.."

TOOLS=.tools/bin
# name | module@version | cgo
PINS=(
  "livekit-server|github.com/livekit/livekit-server/cmd/server@v1.13.5|0"
)

if ! command -v go >/dev/null; then
  echo "go not found: LiveKit's servers are not built, the real-room tests skip (install Go," \
    "then make tools; or put livekit-server from https://docs.livekit.io/home/self-hosting/local/ on PATH)"
  exit 0
fi

mkdir -p "$TOOLS"
for pin in "${PINS[@]}"; do
  IFS='|' read -r name target cgo <<<"$pin"
  version=${target##*@}
  stamp="$TOOLS/.$name.version"
  if [ -x "$TOOLS/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$target" ]; then
    continue
  fi
  echo "building $name $version (go install, once; cached afterwards)"
  gobin=$(mktemp -d)
  log=$(mktemp)
  if CGO_ENABLED=$cgo GOBIN=$(realpath "$gobin") go install "$target" >"$log" 2>&1; then
    # The module's command is named after its folder (`server`): install it under its name.
    built=$(find "$gobin" -maxdepth 1 -type f | head -n 1)
    mv "$built" "$TOOLS/$name" && echo "$target" >"$stamp"
  else
    rm -f "$stamp"
    echo "$name $version not built: $(grep -v '^go: downloading' "$log" | head -n 3 | tr '\n' ' ')"
  fi
  rm -rf "$gobin" "$log"
done
exit 0
