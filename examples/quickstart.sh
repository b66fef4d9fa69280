#!/usr/bin/env bash
# Walk through Lepton's core on scikit-learn's bundled wine data set:
# snapshot data and labels, relabel 1%, diff, lineage, impact, verify.
# Runs in ./lepton-quickstart (created fresh); needs `lepton` on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-lepton-quickstart}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
PY=${PYTHON:-python}

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

$PY "$here/prepare.py" wine raw
step lepton init
step lepton data snapshot wine raw/features.parquet --key sample_id -m "wine features"
step lepton labels snapshot wine-labels raw/labels.csv --dataset wine@latest --key sample_id --label label -m "first labels"
$PY "$here/prepare.py" wine raw --relabel 0.01 --seed 7
step lepton labels snapshot wine-labels raw/labels.csv --dataset wine@latest --key sample_id --label label -m "annotator fixes"
step lepton labels diff wine-labels@v1 wine-labels@v2
step lepton data log wine
step lepton labels log wine-labels
step lepton lineage wine-labels@v2
step lepton impact wine@v1
step lepton alias set wine-labels@v2 reviewed
step lepton show wine-labels@reviewed
step lepton verify
