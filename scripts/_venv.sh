# Shared by scripts/demo and scripts/test: make .venv with Python 3.11+ and install the project.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "voip24h needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.x)." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "Installing python3-venv (Debian) ..." >&2
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        else
            echo "Python's venv module is missing: run 'sudo apt-get install python3-venv'." >&2
            exit 1
        fi
    fi
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$1"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing voip24h and its dependencies into .venv ..." >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -U pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$2"
    touch "$stamp"
fi
