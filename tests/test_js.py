"""The browser JavaScript (assets/*.js): eslint and its unit tests under Node's test runner, both from tools/js.

`npm ci` installs the pinned tools from tools/js/package-lock.json into tools/js/node_modules once, and again only
when the lockfile changes. Skipped when node or npm is missing, failing instead under REQUIRE_SERVICES=1."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, need_service

JS = ROOT / "tools" / "js"
NODE = shutil.which("node")
NPM = shutil.which("npm")


def run(args: list[str], cwd, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"})


def output(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-12000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="module")
def js_tools():
    """tools/js/node_modules, installed by `npm ci` unless it already matches the lockfile."""
    need_service("node", NODE is not None, "the browser JavaScript is linted and unit-tested under Node")
    need_service("npm", NPM is not None, "tools/js is installed with npm ci")
    lock = hashlib.sha256((JS / "package-lock.json").read_bytes()).hexdigest()
    stamp = JS / "node_modules" / ".floorpulse-lock.sha256"
    if not stamp.exists() or stamp.read_text().strip() != lock:
        proc = run([NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"], JS)
        assert proc.returncode == 0, "npm ci in tools/js failed\n" + output(proc)
        stamp.write_text(lock + "\n")
    return JS


def test_eslint_passes_on_the_browser_javascript(js_tools):
    eslint = js_tools / "node_modules" / "eslint" / "bin" / "eslint.js"
    proc = run([NODE, str(eslint), "-c", "tools/js/eslint.config.js", "--max-warnings", "0", "assets", "tools/js"], ROOT)
    assert proc.returncode == 0, "eslint found problems (tools/js/eslint.config.js)\n" + output(proc)


def test_the_javascript_unit_tests_pass(js_tools):
    proc = run([NODE, "--test", "--test-reporter=spec", "test/"], js_tools)
    assert proc.returncode == 0, "node --test failed in tools/js\n" + output(proc)
    counts = dict(re.findall(r"^\S*\s*(tests|pass|fail) (\d+)$", proc.stdout, re.M))
    assert int(counts.get("tests", 0)) > 0 and int(counts.get("pass", 0)) == int(counts["tests"]), output(proc)
