#!/usr/bin/env bash
# LanguageTool 6.6 (its HTTP server and Portuguese rules), pinned in deploy/languagetool/pom.xml:
# Maven copies the jars into PARLE's cache, where PARLE_GRAMMAR=languagetool (the default)
# runs `java -cp '<lib>/*' org.languagetool.server.HTTPServer` on loopback.
#
#   ${PARLE_CACHE_DIR:-$HOME/.cache/parle}/languagetool/6.6/lib   (~165 jars, ~245 MB)
#
# Fetched once: a stamp beside lib/ holds the pom's checksum, and a re-run with the same pom
# does nothing. Maven's own repository for the fetch is a temporary folder, removed afterwards,
# so the jars are on disk once.
#
# Never fails `make setup`: without Java or Maven, or when Maven Central cannot be reached, it
# says so in one line; PARLE then keeps its own grammar rules and the LanguageTool tests skip.
set -uo pipefail
cd "$(dirname "$0")/.."

VERSION=6.6
POM=deploy/languagetool/pom.xml
CACHE=${PARLE_CACHE_DIR:-$HOME/.cache/parle}
HOME_DIR="$CACHE/languagetool/$VERSION"
LIB="$HOME_DIR/lib"
STAMP="$HOME_DIR/.fetched"

if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  echo "java/mvn not found: LanguageTool is not fetched, PARLE keeps its own grammar rules" \
    "(apt-get install default-jre-headless maven, then make setup)"
  exit 0
fi

want=$(sha256sum "$POM" | cut -d' ' -f1)
if [ -d "$LIB" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

echo "fetching LanguageTool $VERSION with Maven (once; ~245 MB into $LIB)"
mkdir -p "$HOME_DIR"
partial="$HOME_DIR/lib.partial"
repo=$(mktemp -d "$HOME_DIR/.m2.XXXXXX")
log=$(mktemp)
rm -rf "$partial"
if mvn --batch-mode --quiet -f "$POM" -Dmaven.repo.local="$repo" \
  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
  -DoutputDirectory="$(realpath "$partial")" -DincludeScope=runtime >"$log" 2>&1; then
  rm -rf "$LIB" && mv "$partial" "$LIB" && echo "$want" >"$STAMP"
else
  rm -rf "$partial" "$STAMP"
  echo "LanguageTool $VERSION not fetched: $(grep -E 'ERROR' "$log" | head -n 2 | tr '\n' ' ')"
fi
rm -rf "$repo" "$log"
exit 0
