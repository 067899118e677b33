# Sourced by scripts/demo and scripts/test: make sure .venv exists and holds exactly the
# locked dependencies. Needs only Python 3.11+ with venv and pip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Needlepoint needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))." >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating the virtual environment in .venv ..." >&2
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.needlepoint-installed"
want="$(cat "$ROOT/requirements.lock" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing the locked dependencies ..." >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements.lock"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$ROOT"
  echo "$want" > "$stamp"
fi
