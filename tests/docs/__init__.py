"""Every command and code block in README.md and docs/*.md is run, so the docs cannot drift.

docs/runbook.md, docs/alerts.md and docs/collector.md are covered by their own tests
(issue 16); every other page is in scope automatically, a new one included.

Conventions (enforced by tests/docs/test_docs.py; a block that fits none of them fails):

Fences
  Every fenced block names its language. ``bash``/``sh`` blocks are commands and
  ``python`` blocks are code: both are run. A ``toml`` block is a config file: it is
  written to a file and ``tradeobs config check --file`` must find no problem in it.
  ``text`` and ``mermaid`` blocks (diagrams, sample output) are not run. A ``text`` block
  preceded by the line ``<!-- docs: output -->`` is the output of the command just
  before it: its lines must appear in that output, in order (a ``...`` line skips any).

Pages and sections
  A page runs top to bottom in its own empty temporary directory, with a clean
  environment (no ``TRADEOBS_*``/``OTEL_*``), the way a new user would run it. The only
  changes: the ports ``8000`` (the service), ``9464`` (the Prometheus endpoint), ``4222``
  and ``8222`` (NATS) and ``8765`` (the fleet gateway) in commands and code become free
  ports, and a few paths listed in ``SUBSTITUTIONS``
  (test_docs.py) point into the temporary directory; every listed substitution must
  still match its page.

Python blocks
  A block runs as a script (``python3 snippet.py``): it must exit 0, print no traceback
  and log no configuration problem. A block with ``def test_...`` functions runs under
  pytest and must pass. A block whose first line is ``# file: NAME`` is saved as NAME
  for the page's later commands (one of which must use it). A block preceded by the
  line ``<!-- docs: fragment -->`` is a fragment: it must compile, and its imports run.

Commands
  Each line of a shell block is a command (``\\`` continues a line, ``&&`` chains).
  * ``tradeobs demo`` (without ``--duration``), ``uvicorn`` and ``gunicorn`` are servers:
    started in the background as in a second terminal, waited for until they serve (the
    demo: until it has filled and logged an order), and stopped with Ctrl-C (SIGINT) at
    the end of their section (``##`` heading) or when the next server starts. They must
    then exit 0 without a traceback. ``nats-server`` (with ``-p``) and ``tradeobs live
    gateway`` are servers too, each in a terminal of its own: a later server does not stop
    them, the end of their section does (ready: NATS accepts connections, the gateway
    serves its page).
  * ``otelcol-tradeobs --config ...`` (our collector, run natively) is a server alongside the others too: its
    listeners (the config's defaults 4317, 4318, 8888, 8889, 13133, 1777, 55679, in commands too) become free
    ports; ready when its health check answers. A ``tradeobs demo`` sending to it (``TRADEOBS_OTLP_ENDPOINT``) is
    ready once the collector has its metrics and the spans and log records of the ``file/*`` exporters the
    collector's command names. At Ctrl-C the collector must not have logged a failed export (a store it retried
    that is not there): a recipe runs it quietly.
  * ``tradeobs doctor`` checks what is reachable, so it runs with everything up: a real
    collector (otelcol-tradeobs) and a demo service, on free ports; it must exit 0.
  * ``pip install`` lines are not run (they would change the shared environment): the
    packages they name must be installed (``-e .`` is this project, with its ``tradeobs``
    command).
  * ``./scripts/test.sh`` is the suite itself (and reinstalls the package): it must exist,
    be executable and parse (``bash -n``). ``python -m pytest PATH`` runs part of the suite
    (some with a variable that rewrites a snapshot): PATH must exist; when every PATH is a file the page wrote
    (``# file: test_x.py``: a user's own tests), it runs in the page's directory and must pass
    (with the metadata installing this checkout writes on ``PYTHONPATH``: pytest finds tradeobs' plugin).
    ``python scripts/X.py`` is a maintainer tool (the OpenTelemetry canary builds a venv and downloads a release):
    it must answer ``--help``.
  * ``docker compose -f FILE ...``: there is no Docker engine here. Each line goes through
    Debian's ``docker-compose`` (v1) against a copy of compose/, as far as it gets
    without an engine (options, the file with the ``.env`` the page created); the
    services, volumes and container paths it names must exist.
  * Other commands (``tradeobs``, ``python3``, ``curl``, ``grep``, ``tail``, ...) run with
    bash in the page's directory and must exit 0.

Inline code
  A ``tradeobs ...`` code span in prose must parse with the real command-line parser.
  The wheel instructions (``python3 -m pip wheel ...``, then ``/srv/bot/.venv/bin/python -m pip install ...``
  and ``/srv/bot/.venv/bin/tradeobs ...``) run as written on the pages of ``WHEEL_PAGES``: the build in a copy
  of the clone, ``/srv/bot`` a directory of the test's (test_docs.py ``test_the_wheel_instructions_run``).
"""
