#!/usr/bin/env bash
# Python package and test dependencies.
set -euo pipefail
python -m pip install --disable-pip-version-check -q -e ".[test]"
