"""Lints of tradeobs_agent/_internal/collector_config.py on effective-config dicts (no binary needed;
tests/integration/test_collector_tools.py runs them on what the real collector prints)."""

from __future__ import annotations

import fcntl
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradeobs_agent._internal.collector_config import (
    lint,
    migrate_queues,
    queue_file_name,
    queue_files,
    stranded_queues,
)
from tradeobs_agent.secrets_keys import KEY_PATTERN

DELETE = f"delete_matching_keys(resource.attributes, {json.dumps(KEY_PATTERN)})"  # an OTTL string: \\ and \" escaped


def config(**over: Any) -> dict[str, Any]:
    """A small effective config shaped like print-config's JSON."""
    cfg: dict[str, Any] = {
        "extensions": {"file_storage/queue": {"directory": "q"}},
        "processors": {
            "memory_limiter": {},
            "attributes/redact": {"actions": [{"pattern": KEY_PATTERN, "action": "delete"}]},
            "transform/redact": {"log_statements": [{"context": "resource", "statements": [DELETE]}]},
        },
        "exporters": {
            "otlp_grpc/traces": {"sending_queue": {"enabled": True, "storage": "file_storage/queue"}},
            "file/logs": {},
        },
        "service": {
            "pipelines": {
                "traces": {"processors": ["memory_limiter", "transform/redact", "attributes/redact"],
                           "exporters": ["otlp_grpc/traces"]},
                "logs": {"processors": ["memory_limiter", "transform/redact", "attributes/redact"],
                         "exporters": ["file/logs"]},
            }
        },
    }  # fmt: skip
    cfg.update(over)
    return cfg


def codes(cfg: dict[str, Any], cwd: Path) -> list[tuple[str, str]]:
    return [(x.level, x.code) for x in lint(cfg, cwd)]


def test_a_consistent_config_has_no_lint(tmp_path: Path) -> None:
    assert codes(config(), tmp_path) == []


def test_redaction_processor_in_no_pipeline_is_an_error(tmp_path: Path) -> None:
    cfg = config()
    for pl in cfg["service"]["pipelines"].values():
        pl["processors"].remove("transform/redact")
    cfg["processors"]["batch"] = {}
    found = lint(cfg, tmp_path)
    assert [(x.level, x.code) for x in found] == [("warning", "unused-processor"), ("error", "unused-processor")]
    assert "transform/redact" in found[1].message and "unredacted" in found[1].message
    assert "batch" in found[0].message


def test_pipeline_skipping_redaction_is_an_error(tmp_path: Path) -> None:
    cfg = config()
    cfg["service"]["pipelines"]["logs"]["processors"] = ["memory_limiter"]
    found = lint(cfg, tmp_path)
    assert [(x.level, x.code) for x in found] == [("error", "pipeline-without-redaction")]
    assert "pipeline logs does not run attributes/redact, transform/redact" in found[0].message


def test_attributes_redact_before_transform_redact_is_an_error(tmp_path: Path) -> None:
    """transform/redact flattens nested maps (broker.api_key); attributes/redact deletes the secret-named keys of
    span, log record and data point attributes, so it must run after (the order before this change leaked them)."""
    cfg = config()
    cfg["service"]["pipelines"]["logs"]["processors"] = ["memory_limiter", "attributes/redact", "transform/redact"]
    found = lint(cfg, tmp_path)
    assert [(x.level, x.code) for x in found] == [("error", "redaction-out-of-order")]
    assert "pipeline logs" in found[0].message
    assert codes(config(), tmp_path) == []


def test_the_shipped_configs_run_attributes_redact_after_transform_redact() -> None:
    for path in sorted((_REPO / "collector").glob("otel-collector*.yaml")):
        pipelines = (yaml.safe_load(path.read_text()).get("service") or {}).get("pipelines") or {}
        for name, pl in pipelines.items():
            order = pl["processors"]
            assert order.index("transform/redact") < order.index("attributes/redact"), (path.name, name)


def test_redaction_regexes_out_of_sync(tmp_path: Path) -> None:
    cfg = config()
    cfg["processors"]["attributes/redact"]["actions"][0]["pattern"] = KEY_PATTERN.replace("passphrase|", "")
    found = lint(cfg, tmp_path)
    assert [(x.level, x.code) for x in found] == [("error", "redaction-out-of-sync")]
    assert "2 different secret-key regexes" in found[0].message
    # the same regex everywhere, but not the agent's list: a warning
    stmt = cfg["processors"]["transform/redact"]["log_statements"][0]
    other = json.dumps(KEY_PATTERN.replace("passphrase|", ""))
    stmt["statements"] = [f"delete_matching_keys(resource.attributes, {other})"]
    assert codes(cfg, tmp_path) == [("warning", "redaction-out-of-sync")]


def test_queue_file_names_follow_file_storage() -> None:
    assert queue_file_name("otlp_grpc/traces", "traces") == "exporter_otlp_grpc_traces_traces"
    assert queue_file_name("otlp", "logs") == "exporter_otlp__logs"
    assert queue_file_name("otlp_http/eu west", "logs") == "exporter_otlp_http_eu~0020west_logs"


def test_queue_files_of_exporters_in_pipelines_only(tmp_path: Path) -> None:
    cfg = config()
    cfg["exporters"]["otlp_http/logs"] = {"sending_queue": {"enabled": True, "storage": "file_storage/queue"}}
    (q,) = queue_files(cfg, tmp_path)  # otlp_http/logs is in no pipeline: it opens no queue
    assert q.path == tmp_path / "q" / "exporter_otlp_grpc_traces_traces"
    assert (q.exporter, q.signal) == ("otlp_grpc/traces", "traces")


def test_deprecated_alias_with_a_queue_warns(tmp_path: Path) -> None:
    cfg = config()
    cfg["exporters"]["otlp/traces"] = cfg["exporters"].pop("otlp_grpc/traces")
    cfg["service"]["pipelines"]["traces"]["exporters"] = ["otlp/traces"]
    (found,) = lint(cfg, tmp_path)
    assert (found.level, found.code) == ("warning", "deprecated-exporter-type")
    assert "exporter_otlp_grpc_traces_traces" in found.message and "migrate-queue" in found.message


def test_renamed_exporter_strands_its_queue_until_migrated(tmp_path: Path) -> None:
    qdir = tmp_path / "q"
    qdir.mkdir()
    (qdir / "exporter_otlp_traces_traces").write_bytes(b"queued")  # written by the old otlp/traces
    (qdir / "exporter_debug__logs").write_bytes(b"x")  # not ours: no exporter of this config
    cfg = config()
    stranded = stranded_queues(cfg, tmp_path)
    assert [(p.name, h.exporter if h else None) for p, h in stranded] == [
        ("exporter_debug__logs", None),
        ("exporter_otlp_traces_traces", "otlp_grpc/traces"),
    ]
    assert codes(cfg, tmp_path) == [("warning", "stranded-queue"), ("error", "stranded-queue")]

    done, problems = migrate_queues(cfg, tmp_path, dry_run=True)
    assert done == ["exporter_otlp_traces_traces -> exporter_otlp_grpc_traces_traces (otlp_grpc/traces, traces)"]
    assert problems == [] and (qdir / "exporter_otlp_traces_traces").exists()
    done, problems = migrate_queues(cfg, tmp_path)
    assert len(done) == 1 and problems == []
    assert (qdir / "exporter_otlp_grpc_traces_traces").read_bytes() == b"queued"
    assert codes(cfg, tmp_path) == [("warning", "stranded-queue")]
    assert migrate_queues(cfg, tmp_path) == ([], [])


def test_migration_refuses_a_queue_file_in_use(tmp_path: Path) -> None:
    qdir = tmp_path / "q"
    qdir.mkdir()
    legacy = qdir / "exporter_otlp_traces_traces"
    legacy.write_bytes(b"queued")
    with open(legacy, "rb") as held:  # what bbolt does while a collector has the file open
        fcntl.flock(held, fcntl.LOCK_EX)
        done, problems = migrate_queues(config(), tmp_path)
    assert done == [] and "stop it first" in problems[0]
    assert legacy.exists()


def test_migration_never_overwrites(tmp_path: Path) -> None:
    qdir = tmp_path / "q"
    qdir.mkdir()
    (qdir / "exporter_otlp_traces_traces").write_bytes(b"old data")
    (qdir / "exporter_otlp_grpc_traces_traces").write_bytes(b"new queue")
    done, problems = migrate_queues(config(), tmp_path)
    assert done == []
    assert "both exporter_otlp_traces_traces and exporter_otlp_grpc_traces_traces exist" in problems[0]
    assert (qdir / "exporter_otlp_traces_traces").read_bytes() == b"old data"


def test_queue_dir_not_visible_skips_the_file_lints(tmp_path: Path) -> None:
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "exporter_otlp_traces_traces").write_bytes(b"x")
    assert lint(config(), tmp_path, queue_dir_visible=False) == []


@pytest.mark.parametrize("level", ["error", "warning"])
def test_lint_levels_are_error_or_warning(level: str, tmp_path: Path) -> None:
    cfg = config()
    cfg["processors"]["unused/redact" if level == "error" else "unused"] = {}
    assert {x.level for x in lint(cfg, tmp_path)} == {level}


# -- listeners and the auth/TLS overlays (collector/*.yaml as shipped)

_REPO = Path(__file__).resolve().parents[2]
_ENV_DEFAULT = re.compile(r"^\s*(?:endpoint|host):\s*\$\{env:(\w+):-([^}]*)\}", re.MULTILINE)


def _loopback(value: str) -> bool:
    host = re.sub(r"^[a-z]+://", "", value).rsplit(":", 1)[0] if ":" in value else value
    return host in ("127.0.0.1", "localhost", "[::1]")


@pytest.mark.parametrize("name", ["otel-collector.yaml", "jaeger-test.yaml"])
def test_listeners_default_to_loopback(name: str) -> None:
    text = (_REPO / "collector" / name).read_text()
    defaults = _ENV_DEFAULT.findall(text)
    assert len(defaults) >= 4, defaults  # the pattern still matches how the file is written
    exposed = [(var, value) for var, value in defaults if not _loopback(value.removesuffix("/otlp"))]
    assert exposed == [], f"{name}: endpoints whose default is not loopback: {exposed}"
    assert "0.0.0.0" not in re.sub(r"#.*", "", text)


def test_compose_publishes_on_loopback_only() -> None:
    compose = yaml.safe_load((_REPO / "compose" / "docker-compose.yml").read_text())
    ports = [(name, p) for name, svc in compose["services"].items() for p in svc.get("ports", [])]
    assert ports, "no published port found: the check no longer reads compose's shape"
    assert [(n, p) for n, p in ports if not str(p).startswith("127.0.0.1:")] == []


def test_auth_and_tls_overlays_cover_both_receivers_and_keep_the_extensions() -> None:
    main = yaml.safe_load((_REPO / "collector" / "otel-collector.yaml").read_text())
    auth = yaml.safe_load((_REPO / "collector" / "otel-collector.auth.yaml").read_text())
    tls = yaml.safe_load((_REPO / "collector" / "otel-collector.tls.yaml").read_text())
    protocols = set(main["receivers"]["otlp"]["protocols"])
    assert protocols == {"grpc", "http"}
    for proto in protocols:
        assert auth["receivers"]["otlp"]["protocols"][proto]["auth"] == {"authenticator": "bearertokenauth/agents"}
        assert set(tls["receivers"]["otlp"]["protocols"][proto]["tls"]) >= {"cert_file", "key_file"}
    # Lists are replaced on merge: the overlay's list must be the main one plus the authenticator, or an
    # extension added to otel-collector.yaml later would silently be dropped under auth.
    assert auth["service"]["extensions"] == [*main["service"]["extensions"], "bearertokenauth/agents"]
    assert set(auth) == {"extensions", "receivers", "service"} and set(tls) == {"receivers"}


def test_architecture_drawings_show_the_pipelines_processors() -> None:
    """docs/architecture.md's two drawings of the collector name only processors that are in a pipeline of
    collector/otel-collector.yaml (the removed `batch` stayed drawn), and the mermaid one names each of them.
    A processor is any name of a type one of our collector configs declares (`batch`, `filter/noise`); the
    ASCII drawing may shorten a name to its type (`filter`)."""
    configs = {f.name: yaml.safe_load(f.read_text()) for f in (_REPO / "collector").glob("otel-collector*.yaml")}
    types = {name.split("/")[0] for cfg in configs.values() for name in cfg.get("processors") or {}}
    assert {"batch", "memory_limiter", "tail_sampling"} <= types  # the gateway tier declares batch
    pipelines = configs["otel-collector.yaml"]["service"]["pipelines"]
    used = {p for pipeline in pipelines.values() for p in pipeline.get("processors", [])}
    doc = (_REPO / "docs" / "architecture.md").read_text()
    start = doc.index("## Production / compose")
    drawings = re.findall(r"^```(?:mermaid|text)\n(.*?)^```", doc[start : doc.index("\n## ", start)], re.S | re.M)
    assert len(drawings) == 2, "the section no longer has its mermaid and ASCII drawings"
    named_re = re.compile(rf"(?<![\w/])((?:{'|'.join(sorted(types))})(?:/\w+)?)(?![\w/])")
    ok = used | {u.split("/")[0] for u in used}
    for drawing in drawings:
        stray = set(named_re.findall(drawing)) - ok
        assert not stray, f"drawn but in no pipeline of otel-collector.yaml: {stray}"
    missing = used - set(named_re.findall(drawings[0]))
    assert not missing, f"in a pipeline but not drawn: {missing}"
