"""The documentation runs: every page's commands and code (conventions: tests/docs/__init__.py)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

import tradeobs_agent
from tradeobs_agent.cli import build_parser
from tradeobs_agent.collector_tools import build_parser as collector_parser

from .pages import CHECKED, NOT_HERE, NOT_RUN, REPO, RUN, Block, commands, pages, parse
from .runner import PageRun, clean_env

# Paths in a page that must not be touched on this machine -> a path inside the page's directory.
SUBSTITUTIONS: dict[str, dict[str, str]] = {
    "docs/configuration.md": {"/var/log/algo-1": "var-log-algo-1"},
}


def test_scope_is_every_page_but_the_ones_covered_elsewhere() -> None:
    assert {p for p in NOT_HERE if (REPO / p).is_file()} == NOT_HERE, "a page covered elsewhere was renamed"
    in_scope = pages()
    assert in_scope[0] == "README.md" and "docs/first-ten-minutes.md" in in_scope
    assert not set(in_scope) & NOT_HERE
    assert "compose/README.md" in in_scope, "compose/ has no page saying what it holds and how to start it"


def test_the_compose_readme_names_everything_in_compose() -> None:
    """compose/ had no README: a newcomer opening it met 13 entries and no word on what they are or how to start,
    stop and back up the stack. Its table names every entry, so a new one cannot go unexplained."""
    text = (REPO / "compose" / "README.md").read_text(encoding="utf-8")
    table = "\n".join(line for line in text.splitlines() if line.startswith("| `"))
    ignored = {"README.md", "backups", ".env"}  # this page, and what the stack makes when it runs
    for entry in sorted(p.name for p in (REPO / "compose").iterdir() if p.name not in ignored):
        shown = f"`{entry}/`" if (REPO / "compose" / entry).is_dir() else f"`{entry}`"
        assert shown in table, f"compose/README.md: {shown} is not in its table of what compose/ holds"
    for needed in ("up -d", " stop", " down", "backup.sh", "collector check --env compose"):
        assert needed in text, f"compose/README.md does not say {needed!r}"


@pytest.mark.parametrize("path", pages())
def test_every_fence_names_a_language_and_python_compiles(path: str) -> None:
    page = parse(path)
    for block in page.blocks:
        assert block.lang in RUN | CHECKED | NOT_RUN, f"{block.where}: fence language {block.lang!r}"
        if block.lang == "python":
            compile(block.text, block.where, "exec")
        if block.fragment:
            assert block.lang == "python", f"{block.where}: only python blocks can be fragments"


# Usage placeholders in prose (`tradeobs COMMAND --help`, `--port N`) and a value that parses in their place.
PLACEHOLDERS = {"COMMAND": "demo", "N": "1", "PATH": "x.toml", "FILE": "x.md", "URL": "http://127.0.0.1:1"}


@pytest.mark.parametrize("path", pages())
def test_inline_tradeobs_commands_parse(path: str) -> None:
    """`[--file PATH]` is usage notation for an optional part: checked with and without it."""
    parser = build_parser()
    page = parse(path)
    spans = []
    for line, span in page.inline:
        spans.append((line, re.sub(r"\s*\[[^\]]*\]", "", span)))
        if "[" in span:
            spans.append((line, re.sub(r"\[([^\]]*)\]", r"\1", span)))
    for line, span in spans:
        words = []
        for word in shlex.split(span)[1:]:
            if re.fullmatch(r"[A-Z][A-Z_]*", word):
                assert word in PLACEHOLDERS, f"{path}:{line}: add the placeholder {word!r} to PLACEHOLDERS"
                word = PLACEHOLDERS[word]
            words.append(word)
        if words[:1] == ["loadtest"]:
            words = words[:1]  # its own parser: run by the README's `tradeobs loadtest --help`
        try:
            if words[:1] == ["collector"]:  # its own parser too (tradeobs_agent/collector_tools.py)
                collector_parser().parse_args(words[1:])
            else:
                parser.parse_args(words)
        except SystemExit as exc:
            assert exc.code == 0, f"{path}:{line}: `{span}` does not parse"


@pytest.mark.parametrize("path", [p for p in pages() if parse(p).inline_other])
def test_other_inline_commands_name_real_things(path: str, tmp_path: Path) -> None:
    """Commands in prose: compose lines checked like fenced ones (a .env from the example), scripts exist,
    `python3 -m venv` runs; benchmarks and test runs are not run here (they are long), their files must exist."""
    page = parse(path)
    run = PageRun(page, tmp_path)
    for line, span in page.inline_other:
        block = Block(path, line, "sh", span + "\n", 0)
        words = shlex.split(span)
        if words[:2] == ["docker", "compose"]:
            run.prepare_compose()
            shutil.copy(tmp_path / "compose" / ".env.example", tmp_path / "compose" / ".env")
            run.docker_compose(block, words[2:])
        elif words[:3] == ["python3", "-m", "venv"]:
            run.shell(block, span)
        elif words[:4] == ["python3", "-m", "pip", "install"]:  # as a fenced one: what it names is installed
            run.pip(block, words[4:])
        elif words[:4] == ["python3", "-m", "pip", "wheel"]:
            assert path in WHEEL_PAGES, f"{path}:{line}: a wheel build, run by test_the_wheel_instructions_run"
        elif words[:3] == ["python", "-m", "pytest"]:
            assert (REPO / words[3]).exists(), f"{path}:{line}: {words[3]} does not exist"
        elif words[0] in ("python", "python3"):
            assert (REPO / words[1]).is_file(), f"{path}:{line}: {words[1]} does not exist"
        else:  # a script named in prose
            assert (REPO / words[0].removeprefix("./")).is_file(), f"{path}:{line}: {words[0]} does not exist"


# Pages that say how to build tradeobs' wheel and install it into a service's own virtual environment.
WHEEL_PAGES = ("docs/first-ten-minutes.md",)
_WHEEL_SERVICE = "/srv/bot"  # where the page installs it: a directory of the test's in its place


@pytest.mark.integration
@pytest.mark.parametrize("path", WHEEL_PAGES)
def test_the_wheel_instructions_run(path: str, tmp_path: Path) -> None:
    """The page's wheel build, install and check, as written: the build in a copy of the clone (the page's own
    directory has none), the file it names is the file built, the install with the service environment's own Python
    (its dependencies from this environment, as the packaging tests do: ``--no-deps --no-index``, offline; the
    environment sees this one's site-packages), and the command it then names answers from that environment, not
    from the checkout. The docs showed only ``pip install -e .`` from a clone (a newcomer's review)."""
    import venv

    text = (REPO / path).read_text()
    prose = " ".join(re.sub(r"^```.*?^```", "", text, flags=re.M | re.S).split())
    spans = re.findall(r"`([^`]+)`", prose)
    (build,) = [s for s in spans if s.startswith("python3 -m pip wheel ")]
    (wheel_name,) = {m for s in spans for m in re.findall(r"tradeobs-[^/ ]+?-py3-none-any\.whl", s)}
    (install,) = [s for s in spans if s.startswith(f"{_WHEEL_SERVICE}/.venv/bin/python -m pip install ")]
    (check,) = [s for s in spans if s.startswith(f"{_WHEEL_SERVICE}/.venv/bin/tradeobs ")]
    clone = tmp_path / "clone"
    clone.mkdir()
    # the package's top-level modules (the pytest plugin, the console script's entry point) with the rest
    top = [p.relative_to(REPO).as_posix() for p in sorted((REPO / "agent").glob("*.py"))]
    for name in ("pyproject.toml", "README.md", "LICENSE", *top):
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, clone / name)
    shutil.copytree(
        REPO / "agent" / "tradeobs_agent",
        clone / "agent" / "tradeobs_agent",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )
    env = {k: v for k, v in clean_env().items() if k != "PYTHONPATH"}
    res = subprocess.run(["bash", "-c", build], cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [p.name for p in (clone / "dist").glob("*.whl")] == [wheel_name], f"{path}: the page names {wheel_name}"
    service = tmp_path / "srv-bot"
    venv.create(service / ".venv", system_site_packages=True, with_pip=True)
    shutil.copy2(clone / "dist" / wheel_name, service / wheel_name)  # "copy that file next to the service"
    for cmd in (f"{install} --no-deps --no-index", check):
        res = subprocess.run(
            ["bash", "-c", cmd.replace(_WHEEL_SERVICE, str(service))],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, f"{cmd}: {res.stdout}{res.stderr}"
    assert res.stdout.strip().endswith(tradeobs_agent.__version__), res.stdout
    where = subprocess.run(
        [str(service / ".venv" / "bin" / "python"), "-c", "import tradeobs_agent; print(tradeobs_agent.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(service / ".venv"), where  # the wheel's copy, not the checkout's


@pytest.mark.integration
@pytest.mark.parametrize("path", pages())
def test_page_runs(path: str, tmp_path: Path) -> None:
    page = parse(path)
    subs = SUBSTITUTIONS.get(path, {})
    for old in subs:
        assert old in page.text, f"SUBSTITUTIONS[{path!r}]: {old!r} is no longer on the page"
    run = PageRun(page, tmp_path, subs)
    run.run()
    runnable = [b for b in page.blocks if b.lang in RUN | CHECKED]
    assert bool(run.ran) == bool(runnable)


def test_the_commands_run_the_code_under_test(tmp_path: Path) -> None:
    """`tradeobs` and `python3` in a page import this checkout's tradeobs_agent (PYTHONPATH), not another copy."""
    import subprocess

    code = "import tradeobs_agent; print(tradeobs_agent.__file__)"
    out = subprocess.run(["python3", "-c", code], env=clean_env(), capture_output=True, text=True, cwd=tmp_path)
    assert Path(out.stdout.strip()).resolve() == Path(tradeobs_agent.__file__).resolve()
    version = subprocess.run(["tradeobs", "--version"], env=clean_env(), capture_output=True, text=True)
    assert version.stdout.strip() == f"tradeobs {tradeobs_agent.__version__}"


def test_the_python_blocks_type_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A newcomer copies the README's code into a service that mypy checks: it must pass as written (mypy's
    default mode, against this checkout's package and its ``py.typed``). The README and docs/metrics.md called
    ``tt.order("cid-42").fill(...)`` on an ``OrderTrace | None``: mypy reported ``union-attr``, and for an id the
    object does not know (a restart, another object's order) the fill raised ``AttributeError`` in the trading
    code (seen following the README from the wheel)."""
    from mypy import api

    files = []
    named = tmp_path / "named"  # the blocks a page saves as a file (`# file: mybot.py`), under that name: its other
    named.mkdir()  # blocks import them (`import mybot` in `# file: test_mybot.py`)
    for path in pages():
        stem = re.sub(r"\W", "_", path.removesuffix(".md"))
        for block in parse(path).blocks:
            if block.lang == "python" and not block.fragment:
                m = re.match(r"#\s*file:\s*(\S+\.py)\s*$", block.text.split("\n", 1)[0])
                name = named / m.group(1) if m else tmp_path / f"{stem}_{block.line}.py"
                assert not name.exists(), f"{path}:{block.line}: another page's block is saved as {name.name} too"
                name.write_text(block.text)
                files.append(str(name))
    assert len(files) >= 10, files
    monkeypatch.setenv("MYPYPATH", str(REPO / "agent"))  # this checkout's package, not an installed copy
    monkeypatch.chdir(tmp_path)  # and no config file: the repository's is the package's own (strict)
    cache = str(tmp_path / "mypy-cache")
    out, err, status = api.run(["--config-file", "", "--cache-dir", cache, "--python-version", "3.11", *files])
    assert status == 0, out + err


# --------------------------------------------------------------------------- the README's promises


def test_readme_has_exactly_two_setup_commands() -> None:
    first = next(b for b in parse("README.md").blocks if b.lang in ("bash", "sh"))
    assert commands(first) == ["python3 -m pip install -e . && tradeobs demo", "./scripts/test.sh"]


def test_what_the_first_ten_minutes_leave_in_the_clone_is_ignored_by_git() -> None:
    """The page has a newcomer make ``.venv`` in the clone and run the demo and a script there (``logs/``):
    ``.venv/`` was not ignored, so ``git status`` listed it after the first command (seen following the page)."""
    text = (REPO / "docs" / "first-ten-minutes.md").read_text()
    assert "python3 -m venv .venv" in text
    made = [
        ".venv/bin/python",
        "logs/execution.jsonl",
        "agent/tradeobs.egg-info/PKG-INFO",
        ".tradeobs/collector/traces.jsonl",  # the collector run natively (section 6)
    ]
    res = subprocess.run(["git", "check-ignore", "--no-index", *made], cwd=REPO, capture_output=True, text=True)
    assert sorted(res.stdout.split()) == sorted(made), res.stdout + res.stderr


def test_readme_links_the_first_ten_minutes_first() -> None:
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert links[0] == "docs/first-ten-minutes.md"
    docs_list = text[text.index("## Documentation") :]
    assert re.findall(r"\]\((docs/[^)#]+)", docs_list)[0] == "docs/first-ten-minutes.md"


def test_readme_counts_the_log_streams_right() -> None:
    from tradeobs_agent.logs import STREAMS

    streams = len(STREAMS) + 1  # and `service`: every other logger
    words = {5: "five", 6: "six", 7: "seven"}
    assert f"{words[streams]} streams" in (REPO / "README.md").read_text()
    table = (REPO / "docs" / "logging.md").read_text().split("## Streams")[1].split("##")[0]
    assert len(re.findall(r"^\| `\w+`", table, flags=re.M)) == streams


# --------------------------------------------------------------------------- docs/metrics.md vs the endpoint


def test_metrics_doc_says_what_the_embedded_endpoint_serves() -> None:
    """_count and _sum for every histogram but a signed one (buckets only), in both formats; exemplars on
    OpenMetrics scrapes only."""
    agent = tradeobs_agent.init(otlp=False, live=False, logs=False, prometheus=tradeobs_agent.PrometheusOptions(port=0))
    assert agent.prometheus_url
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    order = tt.order_signal("c-1", "AAPL", "buy", 100, 10.0)
    order.submitted()
    order.fill(100, 9.99, expected_price=10.0)  # favourable: negative slippage
    text = _scrape(agent.prometheus_url, "text/plain")
    om = _scrape(agent.prometheus_url, "application/openmetrics-text")
    histograms = set(re.findall(r"^# TYPE (\S+) histogram$", text, flags=re.M))
    assert "trading_order_slippage" in histograms and "trading_order_submit_to_fill_latency_seconds" in histograms
    for name in histograms:
        for body in (text, om):
            assert re.search(rf"^{name}_bucket\{{.*le=\"\+Inf\"\}} 1\b", body, flags=re.M), name
            signed = name == "trading_order_slippage"
            assert bool(re.search(rf"^{name}_count\{{", body, flags=re.M)) is not signed, name
            assert bool(re.search(rf"^{name}_sum\{{", body, flags=re.M)) is not signed, name
    assert " # {" not in text
    exemplar = r'\} 1 # \{trace_id="[0-9a-f]{32}",span_id="[0-9a-f]{16}"\}'
    assert re.search(r"^trading_order_slippage_bucket\{.*" + exemplar, om, flags=re.M)
    doc = " ".join((REPO / "docs" / "metrics.md").read_text().split())
    assert "the embedded endpoint serves its buckets only, in both formats" in doc
    assert "The embedded endpoint serves them too, on OpenMetrics scrapes" in doc
    assert "The classic text format (curl, `Accept: text/plain`) has no exemplars." in doc
    assert "uses the classic text format, which has no exemplars" not in doc


def _scrape(url: str, accept: str) -> str:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.read().decode())


def test_metrics_doc_documents_every_public_instrument_function() -> None:
    doc = (REPO / "docs" / "metrics.md").read_text()
    for name in ("counter", "updown_counter", "gauge", "histogram", "timed"):
        assert f"`{name}(" in doc, name
        assert name in tradeobs_agent.__all__


def test_docs_name_no_deprecated_gunicorn_worker() -> None:
    for path in pages():
        assert "uvicorn.workers.UvicornWorker" not in (REPO / path).read_text(), path


# --------------------------------------------------------------------------- docs/agent.md's failure tables


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation but hyphens dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_when_things_go_wrong_tables_have_short_cells_and_their_links_land() -> None:
    """docs/agent.md's "When things go wrong" table had cells of 300 to 600 words (shutdown, a refusing collector):
    the table could not be scanned. Each cell is short now, its details in a section the cell links to."""
    text = (REPO / "docs" / "agent.md").read_text()
    tables = re.findall(r"^#+ When things go wrong\n\n((?:\|.*\n)+)", text, flags=re.M)
    assert len(tables) == 2
    for table in tables:
        for row in table.splitlines()[2:]:
            for cell in row.strip("|").split(" | "):
                words = len(re.sub(r"\[More\]\(#[^)]*\)", "", cell).split())
                assert words <= 40, f"{words} words in a cell: {cell[:80]}"
    anchors = {_slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors, sorted(links - anchors)


def test_a_page_whose_code_uses_starlettes_testclient_installs_httpx2() -> None:
    """docs/agent.md's tests read the live view with starlette's TestClient and its install line named ``httpx``:
    starlette (1.x) wants ``httpx2`` and with ``httpx`` alone warns, in every run of a newcomer's tests, that it is
    deprecated (this suite has both installed, so the page's run could not see it; seen installing from the wheel in
    a fresh venv). A page whose code imports the TestClient names httpx2 in its install lines, and not httpx."""
    checked = 0
    for path in pages():
        page = parse(path)
        if not any("starlette.testclient" in b.text for b in page.blocks if b.lang == "python"):
            continue
        installs = [
            shlex.split(c)
            for b in page.blocks
            if b.lang in ("bash", "sh")
            for c in commands(b)
            if re.search(r"\bpip install\b", c)
        ]
        named = {re.split(r"[\[<>=!~]", a, maxsplit=1)[0] for argv in installs for a in argv if not a.startswith("-")}
        assert "httpx2" in named and "httpx" not in named, f"{path}: {installs}"
        checked += 1
    assert checked >= 1
