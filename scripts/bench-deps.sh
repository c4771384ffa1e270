#!/usr/bin/env bash
# Installs what the benchmarks need beyond the test services (scripts/system-deps.sh): Postfix for
# its smtp-sink, and wrk, from Debian's packages when they are missing. The postfix service itself
# is stopped afterwards: the benchmarks start smtp-sink on a port of their own.
set -euo pipefail

missing=()
{ command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ]; } || missing+=(postfix)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing+=(postgresql)

if ((${#missing[@]} == 0)); then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing ${missing[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure itself; "No configuration" leaves it idle (we only want smtp-sink).
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged services must not keep running in the background: the benchmarks start their own.
for service in postfix redis-server postgresql; do
  if command -v service >/dev/null 2>&1; then service "$service" stop >/dev/null 2>&1 || true; fi
done
