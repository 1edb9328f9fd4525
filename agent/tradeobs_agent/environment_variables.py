"""Every environment variable tradeobs reads, in one place.

Each setting resolves, at ``init()`` time and never at import, from the first of:
the explicit ``init()`` argument, the ``TRADEOBS_*`` variable, the standard
``OTEL_*`` variable (where one exists), the config file (``tradeobs.toml`` or
``[tool.tradeobs]`` in ``pyproject.toml``), then the default shown here.

``docs/configuration.md`` is generated from the same table
(``tradeobs config docs``), so the two cannot drift.
"""

from __future__ import annotations

# --- identity / resource -------------------------------------------------
TRADEOBS_SERVICE_NAME = "TRADEOBS_SERVICE_NAME"
"""``service.name``. Falls back to ``OTEL_SERVICE_NAME``. Default ``tradeobs-service``."""
TRADEOBS_SERVICE_VERSION = "TRADEOBS_SERVICE_VERSION"
"""``service.version``. Default ``0.0.0`` (``tradeobs demo``: tradeobs' own version)."""
TRADEOBS_ENVIRONMENT = "TRADEOBS_ENVIRONMENT"
"""``deployment.environment``. Default ``dev``."""
TRADEOBS_TRADING_MODE = "TRADEOBS_TRADING_MODE"
"""``trading.mode``: ``paper`` or ``live``. Default ``paper``."""
TRADEOBS_RESOURCE_ATTRIBUTES = "TRADEOBS_RESOURCE_ATTRIBUTES"
"""Extra resource attributes ``k=v,k2=v2``. Falls back to ``OTEL_RESOURCE_ATTRIBUTES``."""
TRADEOBS_CONFIG_FILE = "TRADEOBS_CONFIG_FILE"
"""Path of the config file. Default: ``./tradeobs.toml``, else ``[tool.tradeobs]`` in ``./pyproject.toml``."""
TRADEOBS_SDK_DISABLED = "TRADEOBS_SDK_DISABLED"
"""``true`` turns the whole agent into a no-op. Falls back to ``OTEL_SDK_DISABLED``."""

# --- OTLP ----------------------------------------------------------------
TRADEOBS_OTLP_ENABLED = "TRADEOBS_OTLP_ENABLED"
"""Export all three signals over OTLP. Default ``true``."""
TRADEOBS_OTLP_ENDPOINT = "TRADEOBS_OTLP_ENDPOINT"
"""Collector endpoint. Falls back to ``OTEL_EXPORTER_OTLP_ENDPOINT``.
Default ``http://localhost:4317`` (grpc) or ``http://localhost:4318`` (http/protobuf)."""
TRADEOBS_OTLP_PROTOCOL = "TRADEOBS_OTLP_PROTOCOL"
"""``grpc`` or ``http/protobuf``. Falls back to ``OTEL_EXPORTER_OTLP_PROTOCOL``. Default ``grpc``."""
TRADEOBS_OTLP_HEADERS = "TRADEOBS_OTLP_HEADERS"
"""Headers ``k=v,k2=v2`` (secret: never printed). Falls back to ``OTEL_EXPORTER_OTLP_HEADERS``."""
TRADEOBS_OTLP_TIMEOUT = "TRADEOBS_OTLP_TIMEOUT"
"""Export timeout in seconds. Falls back to ``OTEL_EXPORTER_OTLP_TIMEOUT`` (milliseconds). Default 10."""
TRADEOBS_OTLP_INSECURE = "TRADEOBS_OTLP_INSECURE"
"""Plain-text gRPC. Falls back to ``OTEL_EXPORTER_OTLP_INSECURE``. Default: true for ``http://`` endpoints."""
TRADEOBS_OTLP_RETRY_ITEMS = "TRADEOBS_OTLP_RETRY_ITEMS"
"""Spans or log records kept per signal while the collector is unreachable, then sent in order; past it the oldest
are dropped (counted). 0 turns the buffer off. Default 50000."""
TRADEOBS_OTLP_RETRY_MAX_AGE = "TRADEOBS_OTLP_RETRY_MAX_AGE"
"""Seconds a kept batch waits for the collector before it is dropped (counted). Default 300."""
# Per-signal forms: OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT}
# (timeouts in milliseconds) and TRADEOBS_OTLP_{TRACES,METRICS,LOGS}_{...} (timeouts in seconds)
# are honoured for the matching signal; see ``config.otlp_for``.

# --- traces --------------------------------------------------------------
TRADEOBS_TRACES_SAMPLER = "TRADEOBS_TRACES_SAMPLER"
"""Sampler name. Falls back to ``OTEL_TRACES_SAMPLER``. Default ``parentbased_always_on``."""
TRADEOBS_TRACES_FILE = "TRADEOBS_TRACES_FILE"
"""Order traces as OTLP/JSON lines in a local, rotated file: a path, ``auto`` (``<log_dir>/traces.jsonl`` when no
collector is used) or empty (off). Default ``auto``."""
TRADEOBS_TRACES_SAMPLER_ARG = "TRADEOBS_TRACES_SAMPLER_ARG"
"""Sampler ratio for ``*traceidratio``. Falls back to ``OTEL_TRACES_SAMPLER_ARG``. Default 1.0."""

# --- metrics -------------------------------------------------------------
TRADEOBS_METRIC_EXPORT_INTERVAL = "TRADEOBS_METRIC_EXPORT_INTERVAL"
"""OTLP metric export interval in seconds. Falls back to ``OTEL_METRIC_EXPORT_INTERVAL`` (ms). Default 10."""
TRADEOBS_PROMETHEUS_ENABLED = "TRADEOBS_PROMETHEUS_ENABLED"
"""Serve the Prometheus pull endpoint. Default ``true``."""
TRADEOBS_PROMETHEUS_HOST = "TRADEOBS_PROMETHEUS_HOST"
"""Bind address. Falls back to ``OTEL_EXPORTER_PROMETHEUS_HOST``. Default ``127.0.0.1``."""
TRADEOBS_PROMETHEUS_PORT = "TRADEOBS_PROMETHEUS_PORT"
"""Port (0 picks a free one). Falls back to ``OTEL_EXPORTER_PROMETHEUS_PORT``. Default 9464."""
TRADEOBS_PROMETHEUS_ALLOWED_HOSTS = "TRADEOBS_PROMETHEUS_ALLOWED_HOSTS"
"""Comma-separated host names (or addresses) the Prometheus endpoint answers, besides loopback ones, when it listens
on a loopback address: any other ``Host`` gets 403 (DNS rebinding). Default: none."""
TRADEOBS_MAX_SERIES = "TRADEOBS_MAX_SERIES"
"""Distinct attribute sets per counter or histogram before overflow. Default 2000."""
TRADEOBS_MAX_GAUGE_SERIES = "TRADEOBS_MAX_GAUGE_SERIES"
"""Distinct attribute sets per gauge before overflow (a gauge's overflow series keeps one value). Default 20000."""
TRADEOBS_SYMBOL_ALLOWLIST = "TRADEOBS_SYMBOL_ALLOWLIST"
"""Comma-separated symbols kept as a ``symbol`` label; others become ``other``. Default: all."""
TRADEOBS_CONTRACT_MULTIPLIERS = "TRADEOBS_CONTRACT_MULTIPLIERS"
"""Contract multipliers, ``ESZ6=50,CLF7=1000``: notionals are qty * price * multiplier. Default: none (1)."""

# --- logs ----------------------------------------------------------------
TRADEOBS_LOGS_ENABLED = "TRADEOBS_LOGS_ENABLED"
"""Install the non-blocking log pipeline. Default ``true``."""
TRADEOBS_LOG_DIR = "TRADEOBS_LOG_DIR"
"""Directory for JSON-lines log files; empty disables files. Default ``logs``."""
TRADEOBS_LOG_LEVEL = "TRADEOBS_LOG_LEVEL"
"""Root level for captured logs. Default ``INFO``."""
TRADEOBS_LOG_CONSOLE = "TRADEOBS_LOG_CONSOLE"
"""Readable console output. Default ``false``."""
TRADEOBS_LOG_QUEUE_SIZE = "TRADEOBS_LOG_QUEUE_SIZE"
"""Bounded log queue capacity. Default 65536."""
TRADEOBS_LOG_QUEUE_POLICY = "TRADEOBS_LOG_QUEUE_POLICY"
"""When the queue is full: ``drop_newest``, ``drop_oldest`` or ``block``. Default ``drop_newest``."""
TRADEOBS_LOG_BLOCK_TIMEOUT = "TRADEOBS_LOG_BLOCK_TIMEOUT"
"""With policy ``block``: longest wait, in seconds, for queue space before dropping. Default 0.1."""
TRADEOBS_LOG_REDACT_PATTERNS = "TRADEOBS_LOG_REDACT_PATTERNS"
"""Extra regexes scrubbed from logs (JSON array, or one pattern), added to the built-in ones. Default: none."""
TRADEOBS_LOG_MAX_BYTES = "TRADEOBS_LOG_MAX_BYTES"
"""Rotate a log file past this size. Default 50 MiB."""
TRADEOBS_LOG_ROTATE_SECONDS = "TRADEOBS_LOG_ROTATE_SECONDS"
"""Rotate a log file after this age (0 = size only). Default 86400."""
TRADEOBS_LOG_BACKUP_COUNT = "TRADEOBS_LOG_BACKUP_COUNT"
"""Rotated (gzipped) files kept per stream. Default 10."""

# --- live stream ---------------------------------------------------------
TRADEOBS_LIVE_ENABLED = "TRADEOBS_LIVE_ENABLED"
"""Run the live SSE producer. Default ``true``."""
TRADEOBS_LIVE_HZ = "TRADEOBS_LIVE_HZ"
"""Frames per second. Default 10."""
TRADEOBS_LIVE_MAX_CLIENTS = "TRADEOBS_LIVE_MAX_CLIENTS"
"""Concurrent stream clients before 503. Default 5000."""
TRADEOBS_LIVE_EVENT_BUFFER = "TRADEOBS_LIVE_EVENT_BUFFER"
"""Trading events the event bus keeps for its readers (live stream, worker group, NATS). Default 2048."""
TRADEOBS_LIVE_NATS_URL = "TRADEOBS_LIVE_NATS_URL"
"""NATS server URL(s), comma-separated: publish live frames and events to JetStream for ``tradeobs live gateway``
(secret: may hold credentials, never printed). Default: empty, not published."""
TRADEOBS_LIVE_TOKEN = "TRADEOBS_LIVE_TOKEN"
"""Secret for signed stream tokens; empty disables auth (secret: never printed)."""
TRADEOBS_LIVE_SESSION_TTL = "TRADEOBS_LIVE_SESSION_TTL"
"""Seconds the ``tradeobs_live`` cookie lasts, which opening the page with ``?token=`` (a short-lived link) gives.
Default 28800 (8 hours)."""
TRADEOBS_LIVE_CORS_ORIGINS = "TRADEOBS_LIVE_CORS_ORIGINS"
"""Comma-separated CORS allowlist for the live endpoints. Default: none."""
TRADEOBS_LIVE_ALLOWED_HOSTS = "TRADEOBS_LIVE_ALLOWED_HOSTS"
"""Comma-separated host names (or addresses) the live endpoints answer, besides loopback ones, when they have no
``live_token`` and listen on a loopback address: any other ``Host`` gets 403 (DNS rebinding). Default: none."""
TRADEOBS_LIVE_GRAFANA_URL = "TRADEOBS_LIVE_GRAFANA_URL"
"""Grafana base URL (e.g. ``http://localhost:3000``) the live page links each order and fill to: Explore with
its trace id on the Jaeger datasource, and the order drill-down dashboard. Default: none (no links)."""
TRADEOBS_LIVE_MONEY_DECIMALS = "TRADEOBS_LIVE_MONEY_DECIMALS"
"""Decimals the live page shows money with: P&L and equity to this many, notionals and exposure to 2 fewer.
Default: 2 (8 for an account kept in BTC, whose P&L of +0.0012 read +0.00)."""
TRADEOBS_TRADING_DAY_START = "TRADEOBS_TRADING_DAY_START"
"""When the desk's trading day starts, for the live page's day P&L (``account.pnl_day``): ``HH:MM`` and an IANA
time zone, e.g. ``17:00 America/New_York`` or ``09:00 Asia/Tokyo`` (without a zone: the server's local time).
Default: empty, the server's local midnight."""
TRADEOBS_DAY_PNL = "TRADEOBS_DAY_PNL"
"""What the live page's day P&L (``account.pnl_day``) is: ``change``, the P&L minus its value when the trading day
started (for a P&L the service counts from its own start), or ``reported``, the P&L as the service reports it (it
resets it when the trading day starts, as a broker's day P&L does). Default: ``change``."""

# --- several worker processes (gunicorn, uvicorn --workers, fork) --------
TRADEOBS_MULTIPROCESS = "TRADEOBS_MULTIPROCESS"
"""``auto``: the workers of one service (gunicorn and uvicorn workers, ``multiprocessing`` and fork children that
call ``init()``) share one Prometheus endpoint and one live view; ``on``: always, grouped by the parent process;
``off``: never (each process on its own, as a single process). A boolean, as the other switches read it, works
too: ``true``/``1``/``yes`` mean ``on``, ``false``/``0``/``no`` mean ``off`` (any case). Default ``auto``."""
TRADEOBS_MULTIPROCESS_DIR = "TRADEOBS_MULTIPROCESS_DIR"
"""Base directory where the workers share their snapshots (``tradeobs-<uid>/`` inside it, mode 0700).
Default: ``/dev/shm``, else the temporary directory."""

# --- lifecycle -----------------------------------------------------------
TRADEOBS_SHUTDOWN_TIMEOUT = "TRADEOBS_SHUTDOWN_TIMEOUT"
"""Upper bound, in seconds, on ``shutdown()``. Default 5."""

# --- internal errors -----------------------------------------------------
TRADEOBS_INTERNAL_ERRORS = "TRADEOBS_INTERNAL_ERRORS"
"""``raise``: an internal error (a bug of ours) re-raises instead of being counted and logged once
(strict mode, for tests; read at each error by ``_errors``). Default: unset, never raise."""

# --- the demo service's app factory (``tradeobs_agent.demo:create_app``) --
TRADEOBS_DEMO_SYMBOLS = "TRADEOBS_DEMO_SYMBOLS"
"""How many symbols the demo trades (a count: AAPL, MSFT, ... then SYM0010, ...). Default 10."""
TRADEOBS_DEMO_TICK_HZ = "TRADEOBS_DEMO_TICK_HZ"
"""Demo market-data steps per second. Default 10."""
TRADEOBS_DEMO_ORDERS_HZ = "TRADEOBS_DEMO_ORDERS_HZ"
"""Demo orders per second. Default 2."""
TRADEOBS_DEMO_SEED = "TRADEOBS_DEMO_SEED"
"""Random seed of the demo's market and broker. Default: none."""

# --- standard OpenTelemetry variables honoured as fallbacks --------------
OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"
OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"
OTEL_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
OTEL_EXPORTER_OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
OTEL_EXPORTER_OTLP_TIMEOUT = "OTEL_EXPORTER_OTLP_TIMEOUT"
OTEL_EXPORTER_OTLP_INSECURE = "OTEL_EXPORTER_OTLP_INSECURE"
OTEL_TRACES_SAMPLER = "OTEL_TRACES_SAMPLER"
OTEL_TRACES_SAMPLER_ARG = "OTEL_TRACES_SAMPLER_ARG"
OTEL_METRIC_EXPORT_INTERVAL = "OTEL_METRIC_EXPORT_INTERVAL"
OTEL_EXPORTER_PROMETHEUS_HOST = "OTEL_EXPORTER_PROMETHEUS_HOST"
OTEL_EXPORTER_PROMETHEUS_PORT = "OTEL_EXPORTER_PROMETHEUS_PORT"
SIGNALS = ("traces", "metrics", "logs")
"""Per-signal forms ``OTEL_EXPORTER_OTLP_<SIGNAL>_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT}``."""

# --- read by other parts of tradeobs, not by the agent --------------------
OTHER_TRADEOBS_VARIABLES = frozenset(
    {
        # collector/otel-collector.yaml (our collector distribution's config; set by compose/ and the tests)
        "TRADEOBS_COLLECTOR_LOG_LEVEL",
        "TRADEOBS_COLLECTOR_METRICS_HOST",
        "TRADEOBS_COLLECTOR_METRICS_PORT",
        "TRADEOBS_COLLECTOR_STORAGE_DIR",
        "TRADEOBS_DEPLOYMENT_ENVIRONMENT",
        "TRADEOBS_HEALTH_CHECK_ENDPOINT",
        "TRADEOBS_LOGS_EXPORTERS",
        "TRADEOBS_LOGS_FILE_PATH",
        "TRADEOBS_LOGS_OTLPHTTP_ENDPOINT",
        "TRADEOBS_MEMORY_LIMIT_MIB",
        "TRADEOBS_MEMORY_SPIKE_LIMIT_MIB",
        "TRADEOBS_OTLP_GRPC_ENDPOINT",
        "TRADEOBS_OTLP_HTTP_ENDPOINT",
        "TRADEOBS_PPROF_ENDPOINT",
        "TRADEOBS_PROMETHEUS_EXPORTER_ENDPOINT",
        "TRADEOBS_TRACES_EXPORTERS",
        "TRADEOBS_TRACES_FILE_PATH",
        "TRADEOBS_TRACES_OTLP_ENDPOINT",
        "TRADEOBS_TRACES_OTLP_INSECURE",
        "TRADEOBS_ZPAGES_ENDPOINT",
        # collector/otel-collector-agent.yaml (the per-host agent tier: where its gateways are)
        "TRADEOBS_GATEWAY_DNS_INTERVAL",
        "TRADEOBS_GATEWAY_DNS_NAME",
        "TRADEOBS_GATEWAY_DNS_PORT",
        "TRADEOBS_GATEWAY_ENDPOINTS",
        "TRADEOBS_GATEWAY_INSECURE",
        "TRADEOBS_GATEWAY_RESOLVER",
        "TRADEOBS_GATEWAY_RETRY_MAX_ELAPSED",
        # collector/otel-collector-gateway.yaml (the gateway tier's tail sampling)
        "TRADEOBS_TAIL_DECISION_WAIT",
        "TRADEOBS_TAIL_DECISION_WAIT_AFTER_ROOT",
        "TRADEOBS_TAIL_LATENCY_THRESHOLD_MS",
        "TRADEOBS_TAIL_NUM_TRACES",
        "TRADEOBS_TAIL_SAMPLING_PERCENT",
        # collector/otel-collector.auth.yaml and otel-collector.tls.yaml (optional overlays)
        "TRADEOBS_COLLECTOR_TOKEN",
        "TRADEOBS_TLS_CERT_FILE",
        "TRADEOBS_TLS_KEY_FILE",
        # compose/.env: the demo's host port; the runbook's URL in the alerts (compose/prometheus);
        # the demo container's collector (the agent tier in the scaled profile)
        "TRADEOBS_DEMO_PORT",
        "TRADEOBS_DEMO_COLLECTOR",
        "TRADEOBS_RUNBOOK_URL",
        # `tradeobs collector check|reload|migrate-queue` (collector_tools.py, docs/collector.md)
        "TRADEOBS_COLLECTOR_BIN",
        "TRADEOBS_COLLECTOR_CONFIG",
        "TRADEOBS_COLLECTOR_PID_FILE",
        # tools: build cache (scripts/), the SSE load test, the test harness
        "TRADEOBS_CACHE",
        "TRADEOBS_LOADTEST_LOOP",
        "TRADEOBS_KEEP_TEST_DIRS",
        "TRADEOBS_TEST_READY_TIMEOUT",
        "TRADEOBS_TEST_DATA_TIMEOUT",
        "TRADEOBS_TEST_WORKERS",
        "TRADEOBS_CHROMIUM",
        "TRADEOBS_RELIABILITY_UPDATE",
    }
)
"""``TRADEOBS_*`` names that belong to the collector's config, compose, the build and the tests.

The agent does not read them, and does not report them as unknown when they
share its environment (a compose ``.env``, a CI job).
``tests/unit/test_config.py`` checks this list against every ``TRADEOBS_*`` name
used in the repository.
"""
