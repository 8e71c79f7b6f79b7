#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with the CPU build of torch,
# codebrain in editable mode and its dev extra (tests, lint, braindecode oracle, ONNX).
# Usage: ./setup.sh            (reuses an existing .venv)
#        FRESH=1 ./setup.sh    (deletes .venv first; CI does this)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [[ "${FRESH:-0}" == "1" ]]; then rm -rf .venv; fi
if [[ ! -x .venv/bin/python ]]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# The CPU wheel first: the project's range (torch<=2.13.0) then installs nothing more.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# braindecode (test oracle only) imports torchaudio; PyPI's torchaudio wheels carry compiled
# extensions built against CUDA torch, which cannot load beside the CPU torch. torchaudio
# imports in pure-Python mode without them, and braindecode's CodeBrain never calls them.
.venv/bin/python - <<'PYEOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("torchaudio")
if spec is not None and spec.origin:
    for so in (pathlib.Path(spec.origin).parent / "lib").glob("*.so"):
        so.unlink()
PYEOF
echo "codebrain environment ready in .venv"
