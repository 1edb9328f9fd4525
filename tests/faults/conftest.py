"""The fault tests (marker ``faults``): real processes, injected faults, rows for docs/reliability.md.

Each test starts what it needs (``harness.py``: ``Pipeline``, ``DemoService``) on free loopback ports and
stops it; see ``harness.py`` for the accounting and ``report.py`` for the report.
"""
