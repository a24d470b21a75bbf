#!/bin/sh
# System libraries reportgen needs, installed with apt when we can, else the
# one command to run is printed.  `runtime`: WeasyPrint's Pango/HarfBuzz (PDF)
# and python3-venv.  `test`: also Debian's chromium (headless HTML check) and
# poppler-utils (PDF text/PNG checks).  Quick when everything is present.
set -eu
MODE="${1:-runtime}"
PKGS="libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0"
if [ "$MODE" = "test" ]; then
  PKGS="$PKGS poppler-utils chromium"
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  PKGS="$PKGS python3-venv"
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "reportgen: not a Debian/Ubuntu system; make sure these are installed: $PKGS" >&2
  exit 0
fi
MISSING=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    MISSING="$MISSING $p"
  fi
done
[ -z "$MISSING" ] && exit 0
CMD="apt-get update && apt-get install -y --no-install-recommends$MISSING"
if [ "$(id -u)" = "0" ]; then
  echo "reportgen: installing system packages:$MISSING" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $MISSING >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  echo "reportgen: installing system packages with sudo:$MISSING" >&2
  sudo sh -c "apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $MISSING >/dev/null"
else
  echo "reportgen: missing system packages:$MISSING" >&2
  echo "reportgen: run:  sudo sh -c '$CMD'" >&2
  if [ "$MODE" = "runtime" ]; then exit 1; fi
  echo "reportgen: (tests needing them will be skipped)" >&2
fi
