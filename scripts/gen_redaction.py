#!/usr/bin/env python3
"""Rewrite the generated redaction section of the collector configs from the one list of secret keys.

    python scripts/gen_redaction.py            # rewrite every collector/*.yaml that has the section
    python scripts/gen_redaction.py --check    # exit 1 (with a diff) if a file differs from what the list gives

The section is everything between the BEGIN and END marker lines: the
``attributes/redact`` and ``transform/redact`` processors, whose regexes come
from ``tradeobs_agent.secrets_keys`` (the list the agent's log redaction uses
too). ``tests/unit/test_secrets_keys.py`` runs the check.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "agent"))

from tradeobs_agent.redaction import MASK  # noqa: E402
from tradeobs_agent.secrets_keys import KEY_PATTERN, TEXT_KEY_PATTERN  # noqa: E402

BEGIN = "# >>> BEGIN GENERATED redaction"
END = "# <<< END GENERATED redaction"


def _collector(s: str) -> str:
    """A literal for the collector config: `$` is written `$$` (`${...}` would be an env var)."""
    return s.replace("$", "$$")


def _ottl_string(s: str) -> str:
    """An OTTL string literal: backslash and double quote escaped."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _yaml_single(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def body_pattern() -> str:
    """RE2 regex for ``key=value`` / ``key: value`` / ``"key": "value"`` in log bodies (group 1 is kept)."""
    return "(?i)((?:" + TEXT_KEY_PATTERN + r")[\"']?\s*[:=]\s*[\"']?)(bearer\s+)?[^\s\"',;}]+"


def block(indent: str = "  ") -> str:
    """The generated section (marker lines included), each line prefixed with ``indent``."""
    keys = _ottl_string(KEY_PATTERN)

    def delete(path: str) -> str:
        return _yaml_single(_collector(f"delete_matching_keys({path}, {keys})"))

    # The replacement keeps group 1 (the key and separator) and puts the agent's marker after it:
    # `${1}[REDACTED]`, written `$${1}[REDACTED]` like every `$`.
    replacement = _ottl_string("${1}" + MASK)
    body = _yaml_single(_collector(f"replace_pattern(log.body, {_ottl_string(body_pattern())}, {replacement})"))
    lines = [
        BEGIN + ": scripts/gen_redaction.py writes this section from",
        "# agent/tradeobs_agent/secrets_keys.py (the list the agent's log redaction uses too).",
        "# Do not edit it by hand: add the key there and run `python scripts/gen_redaction.py`.",
        "#",
        "# Secret redaction, part 1: record-level attributes (span, log record and",
        "# metric data point attributes). Matching keys are DELETED, not hashed: a",
        "# hash of a low-entropy secret (a password) can be reversed by dictionary,",
        "# and nobody needs the value of a key to debug a trading system. The regex",
        "# is searched in the attribute KEY, case-insensitively: api_key, apiKey,",
        "# client_secret, password, authorization, cookie, auth_token, x-auth-token,",
        "# APCA-API-KEY-ID, APCA-API-SECRET-KEY, http.request.header.authorization,",
        "# account_number... It does NOT match gen_ai.usage.input_tokens or order.id.",
        "attributes/redact:",
        "  actions:",
        f"    - pattern: {_yaml_single(_collector(KEY_PATTERN))}",
        "      action: delete",
        "",
        "# Secret redaction, part 2 (OTTL): what the attributes processor does not",
        "# reach: resource attributes, span event attributes, and secrets written",
        '# into log bodies as key=value / key: value / "key": "value" (value ->',
        f"# {MASK}, the agent's marker).",
        "transform/redact:",
        "  error_mode: ignore",
        "  trace_statements:",
        "    - context: resource",
        "      statements:",
        f"        - {delete('resource.attributes')}",
        "    - context: spanevent",
        "      statements:",
        f"        - {delete('spanevent.attributes')}",
        "  metric_statements:",
        "    - context: resource",
        "      statements:",
        f"        - {delete('resource.attributes')}",
        "  log_statements:",
        "    - context: resource",
        "      statements:",
        f"        - {delete('resource.attributes')}",
        "    - context: log",
        "      statements:",
        f"        - {body}",
        END,
    ]
    return "".join((indent + line).rstrip() + "\n" for line in lines)


def rewrite(text: str, name: str = "<config>") -> str:
    """``text`` with its generated section replaced; ValueError if the markers are missing or broken."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.lstrip().startswith(END)]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"{name}: expected one '{BEGIN}' line followed by one '{END}' line")
    start, end = starts[0], ends[0]
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    return "".join(lines[:start]) + block(indent) + "".join(lines[end + 1 :])


def generated_files() -> list[Path]:
    """The collector configs that have a generated redaction section."""
    return sorted(p for p in (REPO / "collector").glob("*.y*ml") if BEGIN in p.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ (exit 1)")
    parser.add_argument("files", nargs="*", type=Path, help="default: every collector/*.yaml with the section")
    args = parser.parse_args(argv)
    files = args.files or generated_files()
    if not files:
        print(f"no file has a '{BEGIN}' section", file=sys.stderr)
        return 1
    stale = 0
    for path in files:
        old = path.read_text()
        new = rewrite(old, str(path))
        if new == old:
            continue
        if args.check:
            stale += 1
            sys.stdout.writelines(
                difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path), "generated")
            )
        else:
            path.write_text(new)
            print(f"rewrote {path}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
