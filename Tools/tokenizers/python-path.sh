# Sourced by the Tools/ scripts of the tokenizer work: sets $PY to a Python with the given packages.
# Uses Tools/python-env when it exists (it creates/refreshes the shared venv and prints the python
# path as its last stdout line); otherwise the venv at ${SHEARS_VENV:-$HOME/.cache/shears/venv}.
shears_python() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    if [ -x "$root/Tools/python-env" ]; then
        "$root/Tools/python-env" "$@" | tail -n 1
    else
        local venv="${SHEARS_VENV:-$HOME/.cache/shears/venv}"
        if [ ! -x "$venv/bin/python" ]; then
            echo "error: no Python venv at $venv (set SHEARS_VENV, or create it with: python3 -m venv $venv && $venv/bin/pip install $*)" >&2
            return 1
        fi
        echo "$venv/bin/python"
    fi
}
