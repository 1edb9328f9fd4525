"""Integration fixtures: real collector, Jaeger, Prometheus and Alertmanager
processes on free loopback ports. The implementation and the fixture API are
documented in procs.py; import helpers from there (`from .procs import ...`,
or from elsewhere `from tests.integration.procs import ...`).
"""

from .procs import (  # noqa: F401 - re-exported as fixtures
    alertmanager,
    collector,
    jaeger,
    procs_dir,
    prometheus,
    stack,
)
