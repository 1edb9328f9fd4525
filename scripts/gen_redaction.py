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
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "agent"))

from tradeobs_agent.redaction import (  # noqa: E402
    DEFAULT_VALUE_PATTERNS,
    FLAT_AUTH_FIELD_PATTERN,
    FLAT_AUTH_SIBLING_PATTERN,
    MASK,
    QUERY_START_PATTERN,
    RE2_FORMS,
    URL_ATTRIBUTES,
)
from tradeobs_agent.secrets_keys import KEY_PATTERN  # noqa: E402

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


class Untranslatable(ValueError):
    """An agent rule whose Python regex has no RE2 (Go regexp) equivalent the translation knows."""


_MASK_LOOKAHEAD = r"(?!\[REDACTED\])"
# "no masked value after a scheme word", right after the optional scheme group: dropped (see re2_rule)
_SCHEME = r"((?:bearer|basic)\s+)?"
_SCHEME_MASK_LOOKAHEAD = r"(?!(?:bearer|basic)\s+\[REDACTED\])"
_WORD_START = r"(?<![A-Za-z0-9])"  # the only lookbehind translated: at the start of group 1, which is kept
_TRAILING = re.compile(r"\(\?!(\[[^\]]*\])\)\Z")  # a lookahead of one character class, at the very end
_QUANTIFIER = re.compile(r"(?:[*+?]|\{\d+(?:,\d*)?\})\??")


def _atom_end(p: str, i: int) -> int:
    """The end of the atom (a character class or a group, with its quantifier) that starts at ``p[i]``."""
    if p[i] == "[":
        j = i + 1 + (p[i + 1] == "^")
        j += p[j] == "]"
        while p[j] != "]":
            j += 2 if p[j] == "\\" else 1
        j += 1
    elif p[i] == "(":
        depth, j = 0, i
        while True:
            if p[j] == "\\":
                j += 2
                continue
            depth += {"(": 1, ")": -1}.get(p[j], 0)
            j += 1
            if depth == 0:
                break
    else:
        raise Untranslatable(f"no class or group after {_MASK_LOOKAHEAD} at {i}")
    q = _QUANTIFIER.match(p, j)
    return q.end() if q else j


def re2_rule(pattern: str, replacement: str) -> tuple[str, str]:
    r"""One of the agent's DEFAULT_VALUE_PATTERNS as (RE2 regex, Go replacement), meaning the same.

    The translations (Go's regexp has no look-around, no backreferences, no conditionals):

    * ``(?!\[REDACTED\])X`` (do not mask a masked value again) -> ``(?:\[REDACTED\]|X)``: a masked value is
      matched first and replaced by the same marker, so the output is what the agent leaves;
    * ``(?<![A-Za-z0-9])`` at the start of group 1 (kept whole by the replacement) -> ``(?:^|[^A-Za-z0-9])``:
      the character before is matched and kept;
    * ``(?![CLASS])`` at the end -> ``($|[^CLASS])``, a last group put back after the mask;
    * ``((?:bearer|basic)\s+)?(?!(?:bearer|basic)\s+\[REDACTED\])`` (the optional scheme group is not given back
      to let its word be the value when a masked value follows it) -> the group alone: RE2 prefers the group (as a
      backtracking engine first tries it) and then the masked value (the alternative above), so it never tries the
      scheme word as the value there;
    * ``\Z`` -> ``\z``; ``\1`` in the replacement -> ``${1}``.

    Anything else that RE2 does not read (other look-arounds, backreferences, ``(?(1)...)``) raises
    :class:`Untranslatable`.
    """
    p = pattern
    if _SCHEME_MASK_LOOKAHEAD in p:
        if p.count(_SCHEME_MASK_LOOKAHEAD) != 1 or _SCHEME + _SCHEME_MASK_LOOKAHEAD + _MASK_LOOKAHEAD not in p:
            raise Untranslatable(f"{_SCHEME_MASK_LOOKAHEAD} only after {_SCHEME}, before {_MASK_LOOKAHEAD}")
        p = p.replace(_SCHEME_MASK_LOOKAHEAD, "")
    while _MASK_LOOKAHEAD in p:
        i = p.index(_MASK_LOOKAHEAD)
        j = i + len(_MASK_LOOKAHEAD)
        end = _atom_end(p, j)
        p = p[:i] + r"(?:\[REDACTED\]|" + p[j:end] + ")" + p[end:]
    if _WORD_START in p:
        if not (p.replace("(?i)", "", 1).startswith("(" + _WORD_START) and replacement.startswith("\\1")):
            raise Untranslatable(f"{_WORD_START} only at the start of group 1 kept by the replacement")
        p = p.replace(_WORD_START, "(?:^|[^A-Za-z0-9])", 1)
    trailing = _TRAILING.search(p)
    if trailing:
        p = p[: trailing.start()] + "($|[^" + trailing.group(1)[1:-1] + "])"
        replacement += "\\" + str(re.compile(p).groups)
    p = p.replace(r"\Z", r"\z")
    if re.search(r"\(\?(?:<?[=!]|\()|\\[1-9]|\(\?P[<=]", p):
        raise Untranslatable("look-around, conditional, backreference or named group")
    go = re.sub(r"\\(\d+)", r"${\1}", replacement)
    if "\\" in go:
        raise Untranslatable(f"replacement {replacement!r}")
    return p, go


def value_rules() -> tuple[list[tuple[str, str]], list[str]]:
    """(the agent's DEFAULT_VALUE_PATTERNS as RE2 (regex, replacement), in the order the agent applies them; the
    rules left out, as the start of their Python regex, with why).

    The agent runs the rules that share a first gate together, where the first of them is (``Redactor.text``);
    the gates themselves are only cheap pre-checks (a substring every match holds), so the collector runs each
    rule on every string.
    """
    by_gate: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for pattern, replacement, gates in DEFAULT_VALUE_PATTERNS:
        by_gate.setdefault(gates[0], []).append((pattern, replacement))
    rules, left_out = [], []
    for pattern, replacement in (r for group in by_gate.values() for r in group):
        if pattern in RE2_FORMS:  # written by hand next to the rule, with its own replacement (redaction.RE2_FORMS)
            rules.extend((rx, re.sub(r"\\(\d+)", r"${\1}", repl)) for rx, repl in RE2_FORMS[pattern])
            continue
        try:
            rules.append(re2_rule(pattern, replacement))
        except Untranslatable as exc:
            left_out.append(f"{pattern[:40]}... ({exc})")
    return rules, left_out


def url_rule() -> tuple[str, str]:
    """The agent's QUERY_START_PATTERN as RE2 (regex, replacement): a secret query parameter at the start of a URL or
    query string attribute's value (``url.query`` is ``key=...&sig=...``), run after the value rules on those
    attributes (``Redactor.attribute_text``)."""
    return re2_rule(QUERY_START_PATTERN, "\\1" + MASK)


def body_pattern() -> str:
    """RE2 regex for ``key=value`` / ``key: value`` / ``"key": "value"`` (the agent's first rule; group 1 kept)."""
    return value_rules()[0][0][0]


def block(indent: str = "  ") -> str:
    """The generated section (marker lines included), each line prefixed with ``indent``."""
    keys = _ottl_string(KEY_PATTERN)

    rules, _ = value_rules()

    def replace(statement: str, target: str) -> list[str]:
        return [
            "        - "
            + _yaml_single(_collector(statement.format(target=target, rx=_ottl_string(rx), repl=_ottl_string(repl))))
            for rx, repl in rules
        ]

    def query_start(path: str) -> list[str]:
        rx, repl = url_rule()
        return [
            "        - "
            + _yaml_single(
                _collector(f"replace_pattern({path}[{_ottl_string(key)}], {_ottl_string(rx)}, {_ottl_string(repl)})")
            )
            for key in sorted(URL_ATTRIBUTES)
        ]

    def statement(s: str) -> str:
        return "        - " + _yaml_single(_collector(s))

    def mask_text(path: str, where: str = "") -> list[str]:
        """Every value rule on the string at ``path`` (a no-op on anything else)."""
        return replace("replace_pattern({target}, {rx}, {repl})" + where, path)

    def attributes(path: str, where: str = "", delete: bool = True, auth: bool = False) -> list[str]:
        """The map at ``path`` flattened (OTTL cannot recurse: a nested map's or list's entries become top-level
        entries, ``broker.api_key``, ``args.1``), its secret-named entries deleted (``delete=False``: by
        attributes/redact, which runs after this processor), its string values masked. ``auth``: also a websocket
        auth message's ``key``/``params`` entries (``ws.message.key``), when a ``secret``, ``passphrase`` or
        ``signature`` entry is in the same map (before that one is deleted)."""
        sibling = f"IsMatch(Keys({path}), {_ottl_string(FLAT_AUTH_SIBLING_PATTERN)})"
        auth_where = f"{where} and {sibling}" if where else f" where {sibling}"
        return [
            statement(f"flatten({path}){where}"),
            *(
                [statement(f"delete_matching_keys({path}, {_ottl_string(FLAT_AUTH_FIELD_PATTERN)}){auth_where}")]
                if auth
                else []
            ),
            *([statement(f"delete_matching_keys({path}, {keys}){where}")] if delete else []),
            *replace('replace_all_patterns({target}, "value", {rx}, {repl})' + where, path),
        ]

    def attribute_context(context: str) -> list[str]:
        # the resource as the agent's resource is (an auth message's key beside a secret entry), the scope not
        return attribute_context_of(context, f"{context}.attributes", auth=context == "resource")

    def attribute_context_of(context: str, path: str, auth: bool = False) -> list[str]:
        return [f"    - context: {context}", "      statements:", *attributes(path, auth=auth)]

    lines = [
        BEGIN + ": scripts/gen_redaction.py writes this section from",
        "# agent/tradeobs_agent/secrets_keys.py and the value rules of",
        "# agent/tradeobs_agent/redaction.py (what the agent's redaction uses too).",
        "# Do not edit it by hand: change them there and run `python scripts/gen_redaction.py`.",
        "#",
        "# Secret redaction, part 1: record-level attributes (span, log record and",
        "# metric data point attributes), AFTER transform/redact in every pipeline",
        "# (which flattens them first: broker.api_key). Matching keys are DELETED,",
        "# not hashed: a hash of a low-entropy secret (a password) can be reversed",
        "# by dictionary, and nobody needs the value of a key to debug a trading",
        "# system. The regex",
        "# is searched in the attribute KEY, case-insensitively: api_key, apiKey,",
        "# client_secret, password, authorization, cookie, auth_token, x-auth-token,",
        "# APCA-API-KEY-ID, APCA-API-SECRET-KEY, http.request.header.authorization,",
        "# account_number... It does NOT match gen_ai.usage.input_tokens or order.id.",
        "attributes/redact:",
        "  actions:",
        f"    - pattern: {_yaml_single(_collector(KEY_PATTERN))}",
        "      action: delete",
        "",
        "# Secret redaction, part 2 (OTTL), BEFORE attributes/redact in every",
        "# pipeline. OTTL does not recurse, so every attribute map (resource, scope,",
        "# span, span event, log record, data point, exemplar) and a map log body are first",
        "# FLATTENED: a nested map's or list's entries become top-level entries",
        '# ({"broker": {"api_key": ...}} -> broker.api_key, a list item args.1; a',
        "# list body becomes a map, body.0, body.1...). Then secret-named entries are",
        "# deleted (here for the resource, scope, span events, exemplars and a map body;",
        "# attributes/redact does it for the rest; the key regex also matches a",
        "# whole key as the last dotted part: broker.account) and secret VALUES",
        "# under any key are masked in every string value, in text log bodies,",
        "# span names, span status messages, span",
        "# event names and log record event names (a label value on the Prometheus",
        f"# page, target_info too), with the agent's marker {MASK} by the agent's",
        "# own rules (translated to RE2, in the agent's order): key=value / key:",
        '# value / "key": "value", Bearer/Basic credentials, account numbers after',
        "# an account word, user:password@ in URLs, JWTs, AWS key ids, ?key= &sig=",
        "# &signature= X-Amz-Signature= &auth= &apitoken= &apikey= query values,",
        "# a Telegram bot token, a Slack webhook's secret and a webhook(s)/hook(s)",
        "# path's token in a URL path, prefixed keys (sk_live_, ghp_,",
        "# github_pat_, xox?-, AIza, sk-ant-, sk-proj-...), Alpaca key ids by their",
        "# shape (PK/AK + 18), request-signing headers (API-Sign, CB-ACCESS-SIGN,",
        "# oauth_signature...), IB Flex ?t= tokens, a Binance listen key in its",
        "# stream URL, a websocket auth message's key/params in text",
        "# ({'action': 'auth', 'key': ...}), PEM private keys; in the",
        "# URL attributes (url.query, url.full, http.url, http.target) also key=,",
        '# sig=, signature=, auth=, apitoken=... at the start (url.query has no "?"). So a service',
        "# without the agent (a plain OTel SDK, Go or Java service) gets them masked",
        "# here; also URL-encoded pairs and URLs (password%3D...,",
        "# https%3A%2F%2Fuser%3Apw%40) and curl's -u/--user name:password (-u only",
        "# after the word curl), by RE2 forms written next to the agent's rules",
        "# (redaction.RE2_FORMS). Not here: (name, value) pairs of a",
        "# header list's repr, keys with percent-encoded letters, the agent's known",
        "# secret values, a flattened auth message's key/params with no secret,",
        "# passphrase or signature entry in the same map (msg.action=auth beside",
        "# msg.params: Polygon's; with one, msg.key is deleted in resource, span,",
        "# span event, log record attributes and a map body), span",
        "# LINK attributes (no processor in this build reaches them: docs/collector.md),",
        "# BYTES values (an attribute or body of raw bytes: the functions skip what",
        "# is no string).",
        "transform/redact:",
        "  # ignore: a statement that failed on a record would leave that record",
        "  # unmasked, but none can fail: each function here skips what it cannot",
        "  # read (tests/unit/test_secrets_keys.py keeps the list to those,",
        "  # tests/integration/test_redaction_nested.py sends every value shape).",
        "  error_mode: ignore",
        "  trace_statements:",
        *attribute_context("resource"),
        *attribute_context("scope"),
        "    - context: span",
        "      statements:",
        *attributes("span.attributes", delete=False, auth=True),
        *query_start("span.attributes"),  # the URL attributes' first parameter
        *mask_text("span.name"),
        *mask_text("span.status.message", ' where span.status.message != ""'),
        "    - context: spanevent",
        "      statements:",
        *attributes("spanevent.attributes", auth=True),
        *query_start("spanevent.attributes"),
        *mask_text("spanevent.name"),
        "  metric_statements:",
        *attribute_context("resource"),
        *attribute_context("scope"),
        "    - context: datapoint",
        "      statements:",
        *attributes("datapoint.attributes", delete=False),
        *query_start("datapoint.attributes"),
        # an exemplar's filtered attributes (the measurement's attributes a view dropped): attributes/redact does not
        # reach them, so secret-named entries are deleted here
        *attribute_context_of("exemplar", "exemplar.filtered_attributes"),
        "  log_statements:",
        *attribute_context("resource"),
        *attribute_context("scope"),
        "    - context: log",
        "      statements:",
        # a list body: a map of one entry, "body", flattened below as a map body is (body.0, body.2.api_key...)
        statement('set(log.cache["body"], log.body) where IsList(log.body)'),
        statement("set(log.body, log.cache) where IsList(log.body)"),
        *mask_text("log.body"),
        # a structured body (a map: a Go/Java service's structured logger): its entries as attributes, nested ones too
        *attributes("log.body", " where IsMap(log.body)", auth=True),
        *attributes("log.attributes", delete=False, auth=True),
        *query_start("log.attributes"),
        *mask_text("log.event_name", ' where log.event_name != ""'),
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
