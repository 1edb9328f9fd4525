"""compose/docker-compose.yml against the Compose specification, offline.

The schema and the `docker-compose config` validator come from Debian's
`docker-compose` package (1.29, Compose spec schema of 2021): the only
registry-shipped copy of the spec available here. That schema predates the
top-level `name:` key (added to the spec in 2022, supported by Compose v2),
so `name` is checked separately and removed before validating.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from .helpers import COMPOSE_DIR, load_compose, require_binary

SCHEMA = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")


def _without_name(doc: dict) -> dict:  # type: ignore[type-arg]
    doc = copy.deepcopy(doc)
    assert isinstance(doc.pop("name"), str)
    return doc


def _schema() -> dict:  # type: ignore[type-arg]
    require_binary("docker-compose")
    if not SCHEMA.is_file():
        pytest.fail(f"{SCHEMA} missing: run `apt-get install -y docker-compose`", pytrace=False)
    return json.loads(SCHEMA.read_text())  # type: ignore[no-any-return]


def _validate(doc: dict) -> None:  # type: ignore[type-arg]
    # The schema declares draft 2019-09 (with a trailing '#', which
    # jsonschema does not map to a metaschema by itself).
    schema = _schema()
    jsonschema.Draft201909Validator.check_schema(schema)
    jsonschema.Draft201909Validator(schema).validate(doc)


def test_validates_against_compose_spec_schema() -> None:
    _validate(_without_name(load_compose()))


def test_debug_overlay_validates_against_schema() -> None:
    overlay = yaml.safe_load((COMPOSE_DIR / "docker-compose.debug.yml").read_text())
    _validate(overlay)
    for svc in overlay["services"].values():
        assert all(p.startswith("127.0.0.1:") for p in svc["ports"])


def test_schema_rejects_a_broken_file() -> None:
    """The validation above can fail: a typo'd key is caught."""
    doc = _without_name(load_compose())
    doc["services"]["prometheus"]["healthcheck"]["intervall"] = "5s"
    with pytest.raises(jsonschema.ValidationError):
        _validate(doc)


def _compose_config(tmp_path: Path, env_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("docker-compose")
    # A copy without `name`; relative paths still resolve against compose/.
    copy_path = tmp_path / "docker-compose.yml"
    copy_path.write_text(yaml.safe_dump(_without_name(load_compose()), sort_keys=False))
    return subprocess.run(
        [
            binary,
            "--project-directory",
            str(COMPOSE_DIR),
            "--env-file",
            str(env_file),
            "-f",
            str(copy_path),
            "config",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=COMPOSE_DIR,
        timeout=120,
    )


def _env_example_as_up_sh_writes_it(tmp_path: Path) -> Path:
    """.env.example with the generated password compose/up.sh puts in (any non-default value)."""
    text = (COMPOSE_DIR / ".env.example").read_text()
    env = tmp_path / "filled.env"
    env.write_text(re.sub(r"(?m)^GRAFANA_ADMIN_PASSWORD=.*$", "GRAFANA_ADMIN_PASSWORD=Zq8generated4test", text))
    return env


def test_docker_compose_config_accepts_env_example(tmp_path: Path) -> None:
    """Interpolation, references (depends_on, volumes, networks) and the
    schema, as `docker-compose config` checks them, with .env.example and the
    password up.sh generates."""
    res = _compose_config(tmp_path, _env_example_as_up_sh_writes_it(tmp_path))
    assert res.returncode == 0, res.stderr
    resolved = yaml.safe_load(res.stdout)
    grafana = resolved["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "Zq8generated4test"
    ports = [p for s in resolved["services"].values() for p in s.get("ports", [])]
    # v1 prints "127.0.0.1:3000:3000" strings (after interpolating the port vars)
    assert ports and all(str(p).startswith("127.0.0.1:") for p in ports), ports
    assert "127.0.0.1:3000:3000/tcp" in ports
    # the hardening survives the validator's resolution (merge keys, anchors) for every service
    for name, svc in resolved["services"].items():
        assert svc["security_opt"] == ["no-new-privileges:true"] and svc["cap_drop"] == ["ALL"], name
        assert svc["read_only"] is True, name
        assert str(svc["user"]).split(":")[0] not in ("0", "root") or name == "backup", name


def test_env_example_copied_literally_does_not_start(tmp_path: Path) -> None:
    """`cp .env.example .env && docker compose up` (docs/deployment.md) must not run Grafana with a
    password anyone can read in the repository: the example's value is empty and compose refuses it."""
    example = (COMPOSE_DIR / ".env.example").read_text()
    assert re.search(r"(?m)^GRAFANA_ADMIN_PASSWORD=$", example), "the example must not carry a usable password"
    res = _compose_config(tmp_path, COMPOSE_DIR / ".env.example", "-q")
    assert res.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD in compose/.env" in res.stderr, res.stderr


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (
            "ALERT_WEBHOOK_URL=http://hooks.example/x\nTRADEOBS_RUNBOOK_URL=https://docs.example/runbook.md\n",
            "GRAFANA_ADMIN_PASSWORD",
        ),
        ("ALERT_WEBHOOK_URL=http://hooks.example/x\nGRAFANA_ADMIN_PASSWORD=x\n", "TRADEOBS_RUNBOOK_URL"),
    ],
)
def test_docker_compose_config_requires_the_settings(tmp_path: Path, given: str, missing: str) -> None:
    env = tmp_path / "partial.env"
    env.write_text(given)
    res = _compose_config(tmp_path, env, "-q")
    assert res.returncode != 0
    assert missing in res.stderr
