#!/usr/bin/env bash
# Packaging check: bioner as a user gets it. Builds a wheel from the checkout, installs it
# (non-editable, without dependencies) into a fresh virtual environment, and runs the console
# scripts and `import bioner` from an empty folder, where nothing of the checkout is importable.
#
# Usage: .ci/package_check.sh DEPS_VENV
#   DEPS_VENV: a virtual environment holding bioner's dependencies (CI's .venv). The fresh
#   environment sees its site-packages through a .pth file, so that torch and the rest are not
#   installed a second time (minutes, and a CUDA torch if pip went to PyPI for it). A .pth line only
#   adds a folder to sys.path; the .pth files inside that folder, among them the editable install
#   of the checkout, are not run, so `import bioner` can only find the wheel's copy.
# BIONER_DATA_DIR must point at the corpora (bc5cdr).
set -euo pipefail
deps_venv="$(cd "${1:?usage: .ci/package_check.sh DEPS_VENV}" && pwd)"
: "${BIONER_DATA_DIR:?set BIONER_DATA_DIR to the folder holding the corpora (bc5cdr/)}"
checkout="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t bioner-package-check-XXXXXX)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS

# Build from a copy of the tracked and untracked-but-not-ignored files: a stale build/ folder of
# the checkout must not leak into the wheel, and the checkout stays untouched.
mkdir "$work/src"
git -C "$checkout" ls-files -z --cached --others --exclude-standard \
  | (cd "$checkout" && tar --null -T - --ignore-failed-read -cf -) | tar -xf - -C "$work/src"
"$deps_venv/bin/python" -m pip wheel -q --no-deps -w "$work/dist" "$work/src"
wheel="$(ls "$work"/dist/bioner-*.whl)"
n_configs="$(python3 -m zipfile -l "$wheel" | grep -c 'bioner/conf/.*\.yaml' || true)"
echo "wheel: $(basename "$wheel"), $(du -k "$wheel" | cut -f1) KiB, $n_configs config files"
[ "$n_configs" -gt 0 ] || { echo "the wheel carries no bioner/conf/*.yaml" >&2; exit 1; }

python3 -m venv "$work/venv"
site="$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$deps_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
  > "$site/bioner_ci_dependencies.pth"
# --ignore-installed: pip sees DEPS_VENV's bioner through the .pth file too and, where that one is
# a regular install of the same version, would keep it instead of installing the wheel.
"$work/venv/bin/python" -m pip install -q --no-deps --ignore-installed "$wheel"

mkdir "$work/empty"
cd "$work/empty"
export PATH="$work/venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled
export BIONER_CACHE_DIR="$work/cache"
unset PYTHONPATH

# The installed copy, not the checkout's, and its requirements met by what CI installed.
python - "$site" <<'PY'
import sys
from importlib.metadata import requires, version

from packaging.requirements import Requirement

import bioner

assert bioner.__file__.startswith(sys.argv[1]), f"bioner imported from {bioner.__file__}"
print("import bioner:", bioner.__file__, bioner.__version__)
for req in map(Requirement, requires("bioner")):
    if req.marker is None:  # extras are markers; only the core requirements here
        assert req.specifier.contains(version(req.name), prereleases=True), (req, version(req.name))
PY
bioner-data stats dataset=bc5cdr > stats.txt
grep -q Chemical stats.txt
bioner-train model=tiny logger=none debug=fast trainer.limit_train_batches=10 trainer.max_steps=10 \
  hydra.run.dir=run > train.txt 2>&1 || { cat train.txt; exit 1; }
grep -q "training stopped: max_steps=10 reached" train.txt || { cat train.txt; echo "not 10 steps" >&2; exit 1; }
test -f run/metrics.json -a -d run/model
printf 'Cisplatin induced nephrotoxicity in rats.\nNaloxone reverses hypotension.\n' > texts.txt
bioner-predict model=run/model input=texts.txt output=spans.jsonl
test "$(wc -l < spans.jsonl)" -eq 2
# A file of spans scored against a corpus (here the gold itself, as CoNLL): F1 1.
mkdir corpus
for split in train devel test; do printf 'Aspirin\tB-Chemical\nhelps\tO\n\n' > "corpus/$split.tsv"; done
bioner-eval predictions=corpus/test.tsv dataset=iob dataset.data_dir=corpus 'splits=[test]' \
  hydra.run.dir=scored > eval.txt 2>&1 || { cat eval.txt; exit 1; }
grep -q "test: strict P 1.0000 R 1.0000 F1 1.0000" eval.txt || { cat eval.txt; exit 1; }
echo "package check passed in $((SECONDS - started)) s"
