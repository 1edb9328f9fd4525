#!/usr/bin/env bash
# The other supported Pythons (3.12, 3.13) for the unit suite under nox (noxfile.py). pyenv provides them
# on the CI machines; this links each newest 3.12.x / 3.13.x into $TRADEOBS_CACHE/bin as python3.12 /
# python3.13, where nox finds them. Fails naming what is missing, rather than skipping a version.
set -euo pipefail
cache="${TRADEOBS_CACHE:-$HOME/.cache/tradeobs}"
mkdir -p "$cache/bin"
for v in 3.12 3.13; do
    exe=""
    if command -v pyenv >/dev/null 2>&1; then
        best="$(pyenv versions --bare 2>/dev/null | grep -E "^${v//./\\.}\.[0-9]+$" | sort -t. -k3,3n | tail -n1 || true)"
        [[ -n "$best" ]] && exe="$(pyenv root)/versions/$best/bin/python$v"
    fi
    if [[ -z "$exe" || ! -x "$exe" ]]; then
        found="$(PATH="${PATH//$cache\/bin:/}" command -v "python$v" 2>/dev/null || true)"
        if [[ -n "$found" ]] && "$found" -c 'import sys' >/dev/null 2>&1; then exe="$found"; fi
    fi
    if [[ -z "$exe" || ! -x "$exe" ]]; then
        echo "15-pythons: python$v not found (pyenv install $v, or a python$v on PATH)" >&2
        exit 1
    fi
    ln -sfn "$exe" "$cache/bin/python$v"
    "$cache/bin/python$v" --version
done
