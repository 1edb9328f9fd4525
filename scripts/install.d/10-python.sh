#!/usr/bin/env bash
# Python package, test dependencies and the dashboard generator's SDK (extra "dashboards").
set -euo pipefail
python -m pip install --disable-pip-version-check -q -e ".[test,dashboards]"
