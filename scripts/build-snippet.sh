#!/usr/bin/env bash
# Minify mailer/web/static/snippet.src.js into snippet.js with terser; commit both files.
# Only a developer who edits the snippet runs this (it needs node/npx); the app and the tests
# use the committed snippet.js. The banner records the source's hash so a test can tell when the
# build is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=mailer/web/static/snippet.src.js
OUT=mailer/web/static/snippet.js
TERSER_VERSION=5.51.4

hash=$(sha256sum "$SRC" | cut -c1-16)
minified=$(npx --yes "terser@${TERSER_VERSION}" "$SRC" --ecma 5 --compress passes=2 --mangle --comments false)
printf '/*! mailer snippet | source sha256:%s */\n%s\n' "$hash" "$minified" > "$OUT"
echo "$OUT: $(wc -c < "$OUT") bytes, $(gzip -9c "$OUT" | wc -c) gzipped"
