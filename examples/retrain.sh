#!/usr/bin/env bash
# The main job, end to end, on the embedded default (local store, SQLite
# registry, Prefect's embedded API: nothing to start). Runs in ./lepton-demo.
#
#   1. a full retraining flow on scikit-learn's bundled digits set
#      (a torch CNN and a scikit-learn baseline): prints the chosen model,
#      why it was chosen and where it was deployed;
#   2. an annotator corrects 1% of the labels; the flow runs again and the
#      lineage shows what was reused and what was retrained;
#   3. a replay of the first run, checked artifact by artifact.
#
# Usage: bash examples/retrain.sh [digits|breast_cancer] [WORKDIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
example=${1:-digits}
work=${2:-lepton-demo}
PY=${PYTHON:-python}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export PREFECT_HOME=${PREFECT_HOME:-$PWD/.prefect}

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

$PY "$here/prepare.py" "$example" data
cp "$here/$example/project.toml" project.toml
step lepton init
step lepton run --config project.toml
first=$(lepton runs list --json | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

$PY "$here/prepare.py" "$example" data --relabel 0.01 --seed 7
step lepton run --config project.toml
step lepton labels diff "$example-labels@v1" "$example-labels@v2"
newest=$(lepton models list --json | $PY -c 'import json,sys; print(json.load(sys.stdin)[-1]["ref"])')
step lepton lineage "$newest" --depth 1
step lepton models list
step lepton replay "$first"
