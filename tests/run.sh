#!/usr/bin/env bash
# The test command (README, .ci/run): makes sure the machine services the
# tests use are there, then runs the whole suite with the project's venv.
#   - PostgreSQL on 127.0.0.1:5432 (registry and Prefect server tests)
#   - Debian's chromium (the Prefect UI test drives it with Playwright;
#     Playwright's own browser download is never used)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser test" >&2
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q chromium >/dev/null \
    || { "${apt_get[@]}" update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q chromium >/dev/null; }
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# two workers (pytest-xdist), whole files to each: much of the suite waits on servers, and a
# module fixture (the team stack) is set up once (loadgroup cannot: xdist 3.8 on pytest 9);
# files in the order conftest.py gives them: the slowest first
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder "$@"
