#!/usr/bin/env python3
"""Split engine/ into domain packages (issue 12 item 5): `git mv` each module, then rewrite every reference.

Usage (from anywhere inside the repository, on a clean tree; commit the result yourself):

    python tools/split_engine.py --dry-run        # print the plan, touch nothing
    python tools/split_engine.py                  # move and rewrite
    python tools/split_engine.py --also emitter=live/emitter   # place a module the map does not know

A second run does nothing (it prints "nothing to do"). Modules the map does not know stay where they are
and are listed; their imports are rewritten like everyone else's.

The map, as the processes need it (web: API, auth, socket namespace; engine: writer, live model, jobs,
intelligence, simulator; shared: schema, storage, config). Each package holds its service, its HTTP API
and its scheduled work where it has them (Netflix/dispatch style):

    engine/core/       config, schema, jsonparse, jsonsafe, bus, jobs, metrics, [sharing], [mq]
    engine/storage/    storage.py -> database.py, models, history
    engine/ingest/     ingest.py -> writer.py, [redis_stream]
    engine/live/       live.py -> model.py, push, realtime (the /live Socket.IO namespace)
    engine/auth/       auth.py -> gate.py, auth_api.py -> api.py, accounts, users, keys
    engine/kiosk/      kiosk.py -> tokens.py, kiosk_api.py -> api.py
    engine/control/    control.py -> service.py, control_api.py -> api.py, stress
    engine/intel/      forecast, drift, rules (the package already holds the service, its parts and api.py)
    engine/simulator/  simulator.py -> floor.py
    engine/web/        api.py -> api.py (events in and out, stats, health, metrics; the error shape)
    engine/runtime/    runtime.py -> engine.py, [leader], [tail]
    engine/            __init__.py and __main__.py stay: `python -m engine` (the Procfile's engine: line)
                       needs engine/__main__.py at the package root, so it is not moved with the runtime.

[name]: moved only when present (other branches add them). What is rewritten, in every tracked file:
- Python imports: `from .x import`, `from . import x`, `from ..x import`, `from engine.x import`,
  `from engine import x`, `import engine.x [as y]` (relative imports stay relative, re-based on the
  module's new place; `from . import __version__, jsonparse` is split in two);
- Python strings that name a module: "engine.x", "engine.x.attr" (monkeypatch targets, logger names,
  `-m` arguments), and `python -m engine.x` inside any string or comment;
- `Path(__file__)...parent` chains in moved modules (one level deeper now);
- text everywhere (Markdown, comments, docstrings, JS, scripts): `engine/x.py` paths and `-m engine.x`.
Bare mentions of a renamed file (`storage.py` without its folder) are listed for a human to check.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import io
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

PACKAGES: dict[str, str] = {
    "core": "Shared by every process: configuration, the event envelope, strict JSON in and out, the bus, the scheduler, metrics, what Redis shares between processes.",
    "storage": "The database: tables, the adapter every SQL statement goes through, history series from the rollups.",
    "ingest": "Events in: the bounded queue and its one batch writer, and the sources that feed it.",
    "live": "The live floor: the in-memory model, the push that coalesces stored events, the /live Socket.IO namespace.",
    "auth": "Who is asking: the request gate, accounts and tokens, the sign-in API, the users CLI, the keys.",
    "kiosk": "Wall screens: kiosk tokens and their API.",
    "control": "The control page: event templates, scenarios, the stress test, and their API.",
    "intel": "The intelligence: forecasts, drift, anomalies, rules and hot-reload.",
    "simulator": "The simulated warehouse floor.",
    "web": "The web process's HTTP API: events in and out, stats, health, metrics, and the error shape every blueprint answers with.",
    "runtime": "The engine process: the Engine that builds and runs every part, leader election, the events tail.",
}

# (module under engine/, package, new module name, optional: moved only when present)
MAP: list[tuple[str, str, str, bool]] = [
    ("config", "core", "config", False),
    ("schema", "core", "schema", False),
    ("jsonparse", "core", "jsonparse", False),
    ("jsonsafe", "core", "jsonsafe", False),
    ("bus", "core", "bus", False),
    ("jobs", "core", "jobs", False),
    ("metrics", "core", "metrics", False),
    ("sharing", "core", "sharing", True),
    ("mq", "core", "mq", True),
    ("storage", "storage", "database", False),
    ("models", "storage", "models", False),
    ("history", "storage", "history", False),
    ("ingest", "ingest", "writer", False),
    ("redis_stream", "ingest", "redis_stream", True),
    ("live", "live", "model", False),
    ("push", "live", "push", False),
    ("realtime", "live", "realtime", False),
    ("auth", "auth", "gate", False),
    ("auth_api", "auth", "api", False),
    ("accounts", "auth", "accounts", False),
    ("users", "auth", "users", False),
    ("keys", "auth", "keys", False),
    ("kiosk", "kiosk", "tokens", False),
    ("kiosk_api", "kiosk", "api", False),
    ("control", "control", "service", False),
    ("control_api", "control", "api", False),
    ("stress", "control", "stress", False),
    ("forecast", "intel", "forecast", False),
    ("drift", "intel", "drift", False),
    ("rules", "intel", "rules", False),
    ("simulator", "simulator", "floor", False),
    ("api", "web", "api", False),
    ("runtime", "runtime", "engine", False),
    ("leader", "runtime", "leader", True),
    ("tail", "runtime", "tail", True),
]
KEPT = {"__init__": "the package (its version)", "__main__": "`python -m engine` needs it at the package root"}

SELF = Path("tools") / "split_engine.py"  # never rewritten: its map names the old modules
SKIP_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".woff", ".woff2", ".ttf", ".pdf", ".db", ".sqlite"}


@dataclass(frozen=True)
class Move:
    old: str  # dotted: engine.storage
    new: str  # dotted: engine.storage.database
    old_path: Path
    new_path: Path


def run(cmd: list[str], root: Path) -> str:
    return subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout


def dotted(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(path: Path, root: Path) -> str:
    """The package a module's relative imports start from."""
    name = dotted(path, root)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def relative(target: str, pkg: str) -> str:
    """`target` (a module or package) written relative to package `pkg`: "..storage", ".", "..".
    Only within the top-level package (engine): outside it, relative imports do not reach."""
    a, b = pkg.split("."), target.split(".")
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    return "." * (len(a) - common + 1) + ".".join(b[common:])


def resolve(pkg: str, level: int, module: str | None) -> str:
    parts = pkg.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


class Plan:
    def __init__(self, root: Path, also: list[str], dry: bool):
        self.root, self.dry = root, dry
        self.engine = root / "engine"
        entries = list(MAP)
        for spec in also:
            name, _, where = spec.partition("=")
            pkg, _, new = where.partition("/")
            if not all(re.fullmatch(r"[A-Za-z_]\w*", x) for x in (name, pkg, new)):
                raise SystemExit(f"--also wants MODULE=PACKAGE/NAME, got {spec!r}")
            entries = [e for e in entries if e[0] != name] + [(name, pkg, new, True)]
            PACKAGES.setdefault(pkg, f"The {pkg} domain.")
        self.moves: list[Move] = []
        self.done: list[Move] = []  # already at their new place (an earlier run)
        self.absent: list[str] = []
        self.conflicts: list[str] = []
        for name, pkg, new, optional in entries:
            old_path, new_path = self.engine / f"{name}.py", self.engine / pkg / f"{new}.py"
            move = Move(f"engine.{name}", f"engine.{pkg}.{new}", old_path, new_path)
            if old_path.exists() and new_path.exists():
                self.conflicts.append(f"engine/{name}.py and engine/{pkg}/{new}.py both exist: left alone")
            elif old_path.exists():
                self.moves.append(move)
            elif new_path.exists():
                self.done.append(move)
            elif not optional:
                self.absent.append(f"engine/{name}.py (in the map, not in the tree)")
        moving = {m.old_path for m in self.moves}
        self.staying = sorted(p.name for p in self.engine.glob("*.py") if p not in moving)
        self.unknown_dirs = sorted(p.name for p in self.engine.iterdir() if p.is_dir() and p.name not in PACKAGES and p.name != "__pycache__")
        # every old name → new name, moved now or by an earlier run (leftover references are still recognised)
        self.renames: dict[str, str] = {m.old: m.new for m in self.moves + self.done}
        self.new_packages = sorted({m.new_path.parent.name for m in self.moves + self.done} - {p.name for p in self.engine.iterdir() if (p / "__init__.py").exists()})
        # an old module whose package keeps its name (engine/storage.py → engine/storage/): `from engine.storage
        # import x` means the package's submodule x when there is one, so the old module must not define an x
        for m in self.moves:
            pkg = m.new_path.parent
            if m.old.rpartition(".")[2] != pkg.name:
                continue
            subs = {e[2] for e in entries if e[1] == pkg.name} | {q.stem for q in pkg.glob("*.py")}
            try:
                tree = ast.parse(m.old_path.read_text(encoding="utf-8"))
            except SyntaxError:
                continue
            names = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
            names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))}
            names |= {(a.asname or a.name).split(".")[0] for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
            for clash in sorted(names & subs):
                self.conflicts.append(f"engine/{m.old_path.name} defines {clash!r}, also a module of engine/{pkg.name}/: "
                                      f"`from {m.old} import {clash}` would be ambiguous; rename one first")
        # everything is rewritten before anything moves: where each moving file goes, and the package its
        # relative imports were written against
        self.after: dict[Path, Path] = {m.old_path: m.new_path for m in self.moves}
        self.before_pkg: dict[Path, str] = {m.old_path: m.old.rpartition(".")[0] for m in self.moves}

    def apply_moves(self) -> None:
        for pkg in self.new_packages:
            init = self.engine / pkg / "__init__.py"
            print(f"  create engine/{pkg}/__init__.py")
            if not self.dry:
                init.parent.mkdir(exist_ok=True)
                init.write_text(f'"""{PACKAGES[pkg]}"""\n', encoding="utf-8")
                run(["git", "add", str(init)], self.root)
        for m in self.moves:
            print(f"  git mv {m.old_path.relative_to(self.root)} {m.new_path.relative_to(self.root)}")
            if not self.dry:
                m.new_path.parent.mkdir(exist_ok=True)
                run(["git", "mv", str(m.old_path), str(m.new_path)], self.root)

    def scan_modules(self) -> None:
        """The module tree as it will be after the moves."""
        self.modules: set[str] = set()
        self.packages: set[str] = set()
        for p in self.engine.rglob("*.py"):
            if "__pycache__" in p.parts:
                continue
            p = self.after.get(p, p)
            self.modules.add(dotted(p, self.root))
            if p.name == "__init__.py":
                self.packages.add(dotted(p, self.root))
        for pkg in self.new_packages:
            self.modules.add(f"engine.{pkg}")
            self.packages.add(f"engine.{pkg}")

    def new_module(self, name: str, after: str | None = None) -> str:
        """The new name of module `name` (itself when it did not move). `after`, the next dotted part when there
        is one, tells an old module apart from the package that took its name: `engine.storage.database` is new."""
        if name not in self.renames:
            return name
        if name in self.packages and after is not None and f"{name}.{after}" in self.modules:
            return name
        return self.renames[name]

    def from_target(self, module: str, name: str) -> tuple[str, str]:
        """`from module import name` → (the module to import from, the name to import there)."""
        sub = f"{module}.{name}"
        if sub in self.renames:  # `from engine import storage`, `from . import jsonparse`: a moved module itself
            parent, _, last = self.renames[sub].rpartition(".")
            return parent, last
        return self.new_module(module, name), name


# ---- rewriting one file ----

PATH_RE = re.compile(r"(?<![\w/.-])engine/(\w+)\.py\b")
DASH_M_RE = re.compile(r"(?<![\w-])(-m\s+)engine\.(\w+)(?![\w.])")
MODULE_STRING_RE = re.compile(r"engine(?:\.[A-Za-z_]\w*)+")
FILE_RE = re.compile(r"Path\(__file__\)\.resolve\(\)((?:\.parent)+|\.parents\[(\d+)\])")
STRING_START_RE = re.compile(r"([A-Za-z]*)('''|\"\"\"|'|\")")


def rewrite_text(text: str, plan: Plan) -> str:
    """Prose, comments, scripts: `engine/x.py` paths and `-m engine.x` commands."""

    def path(m: re.Match) -> str:
        new = plan.renames.get(f"engine.{m.group(1)}")
        return new.replace(".", "/") + ".py" if new else m.group(0)

    def dash_m(m: re.Match) -> str:
        new = plan.renames.get(f"engine.{m.group(2)}")
        return m.group(1) + new if new else m.group(0)

    return DASH_M_RE.sub(dash_m, PATH_RE.sub(path, text))


class PyFile:
    def __init__(self, path: Path, plan: Plan):
        self.path, self.plan = path, plan
        self.src = path.read_text(encoding="utf-8")
        self.lines = io.StringIO(self.src).readlines()  # split on \n only, as ast and tokenize count lines
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.edits: list[tuple[int, int, str]] = []
        self.imports: list[tuple[int, int]] = []  # import statements: their names are not code to rewrite token by token
        self.notes: list[str] = []
        after = plan.after.get(path, path)
        self.pkg_now = package_of(after, plan.root) if after.is_relative_to(plan.engine) else None
        self.moved = path in plan.before_pkg
        self.pkg_before = plan.before_pkg.get(path, self.pkg_now)  # the package its relative imports were written against

    def offset(self, row: int, col: int, *, byte_col: bool = False) -> int:
        if byte_col:  # ast counts UTF-8 bytes, tokenize characters
            col = len(self.lines[row - 1].encode("utf-8")[:col].decode("utf-8", errors="ignore"))
        return self.starts[row - 1] + col

    def span(self, node: ast.stmt) -> tuple[int, int]:
        return self.offset(node.lineno, node.col_offset, byte_col=True), self.offset(node.end_lineno, node.end_col_offset, byte_col=True)

    def rewrite(self) -> str:
        try:
            tree = ast.parse(self.src)
        except SyntaxError as exc:
            self.notes.append(f"not parsed, left alone: {exc}")
            return self.src
        bare: dict[str, str] = {}  # `import engine.x` (no alias): the code then says engine.x.attr
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.imports.append(self.span(node))
            if isinstance(node, ast.ImportFrom):
                self.import_from(node)
            elif isinstance(node, ast.Import):
                self.import_(node, bare)
        self.tokens(bare)
        if self.moved:
            self.file_paths()
        out, last = self.src, len(self.src) + 1
        for start, end, text in sorted(self.edits, reverse=True):
            if end > last:
                raise RuntimeError(f"{self.path}: overlapping edits at offset {start}")
            out, last = out[:start] + text + out[end:], start
        return out

    def import_from(self, node: ast.ImportFrom) -> None:
        if node.level:
            if self.pkg_before is None:
                return  # a relative import outside engine/: not ours
            module = resolve(self.pkg_before, node.level, node.module)
        else:
            module = node.module or ""
        if module != "engine" and not module.startswith("engine."):
            return
        groups: dict[str, list[str]] = {}
        for alias in node.names:
            target, name = (self.plan.new_module(module), "*") if alias.name == "*" else self.plan.from_target(module, alias.name)
            asname = alias.asname or (alias.name if name != alias.name else None)
            groups.setdefault(target, []).append(name + (f" as {asname}" if asname else ""))
        original = [a.name + (f" as {a.asname}" if a.asname else "") for a in node.names]
        if list(groups) == [module] and groups[module] == original and (not node.level or self.pkg_now == self.pkg_before):
            return  # nothing it names moved, and neither did the file

        def spelled(target: str) -> str:
            return relative(target, self.pkg_now) if node.level else target

        start, end = self.span(node)
        stmt = self.src[start:end]
        if len(groups) == 1 and next(iter(groups.values())) == original:
            m = re.match(r"from\s+([.\w]+)\s+import\b", stmt)  # only the module changes: the names stay as written
            if m is None:
                self.notes.append(f"line {node.lineno}: import not understood, left alone: {stmt[:80]!r}")
            elif spelled(next(iter(groups))) != m.group(1):
                self.edits.append((start + m.start(1), start + m.end(1), spelled(next(iter(groups)))))
            return
        indent = " " * (start - self.starts[node.lineno - 1])
        self.edits.append((start, end, ("\n" + indent).join(f"from {spelled(t)} import {', '.join(n)}" for t, n in groups.items())))

    def import_(self, node: ast.Import, bare: dict[str, str]) -> None:
        parts, changed = [], False
        for alias in node.names:
            bits = alias.name.split(".")
            name = alias.name
            if len(bits) >= 2 and bits[0] == "engine":
                head = ".".join(bits[:2])
                new_head = self.plan.new_module(head, bits[2] if len(bits) > 2 else None)
                if new_head != head:
                    name, changed = new_head + alias.name[len(head):], True
                    if alias.asname is None:
                        bare[head] = new_head
            parts.append(name + (f" as {alias.asname}" if alias.asname else ""))
        if changed:
            start, end = self.span(node)
            self.edits.append((start, end, "import " + ", ".join(parts)))

    def tokens(self, bare: dict[str, str]) -> None:
        try:
            toks = list(tokenize.generate_tokens(io.StringIO(self.src).readline))
        except (tokenize.TokenError, SyntaxError) as exc:
            self.notes.append(f"not tokenized, strings left alone: {exc}")
            return
        fstring_middle = getattr(tokenize, "FSTRING_MIDDLE", -1)  # Python 3.12+
        for i, tok in enumerate(toks):
            at = self.offset(*tok.start)
            if any(a <= at < b for a, b in self.imports):
                continue  # rewritten as a statement (a comment inside a regenerated one goes with it)
            if tok.type == tokenize.STRING:
                text = self.string(tok.string)
            elif tok.type in (tokenize.COMMENT, fstring_middle):
                text = rewrite_text(tok.string, self.plan)
            elif tok.type == tokenize.NAME and tok.string == "engine" and bare and i + 2 < len(toks):
                dot, name = toks[i + 1], toks[i + 2]
                head = f"engine.{name.string}"
                if (i == 0 or toks[i - 1].string != ".") and dot.string == "." and head in bare:
                    self.edits.append((self.offset(*tok.start), self.offset(*name.end), bare[head]))
                continue
            else:
                continue
            if text != tok.string:
                self.edits.append((self.offset(*tok.start), self.offset(*tok.end), text))

    def string(self, literal: str) -> str:
        m = STRING_START_RE.match(literal)
        if m is None or "b" in m.group(1).lower():
            return literal
        if "f" in m.group(1).lower():
            return rewrite_text(literal, self.plan)
        body = literal[m.end() : len(literal) - len(m.group(2))]
        if MODULE_STRING_RE.fullmatch(body):  # "engine.x", "engine.x.attr": a module named in a string
            bits = body.split(".")
            head = ".".join(bits[:2])
            new = self.plan.new_module(head, bits[2] if len(bits) > 2 else None)
            return literal[: m.end()] + new + body[len(head) :] + m.group(2) if new != head else literal
        return rewrite_text(literal, self.plan)

    def file_paths(self) -> None:
        """A moved module is one folder deeper: `Path(__file__).resolve().parent.parent` → `.parents[2]`."""
        for m in FILE_RE.finditer(self.src):
            levels = m.group(1).count(".parent") if m.group(2) is None else int(m.group(2)) + 1
            self.edits.append((m.start(1), m.end(1), f".parents[{levels}]"))  # one level more than before
        for n, line in enumerate(self.lines, 1):
            if "__file__" in line and not FILE_RE.search(line):
                self.notes.append(f"line {n} uses __file__ in a way this script does not adjust: {line.strip()[:100]}")


# ---- the whole tree ----


def tracked_files(root: Path) -> list[Path]:
    out = run(["git", "ls-files", "-z"], root)
    return [root / p for p in out.split("\0") if p and (root / p).is_file() and Path(p).suffix.lower() not in SKIP_SUFFIXES]


def unresolved(root: Path, plan: Plan) -> list[str]:
    """Every engine import after the rewrite must name a module that exists."""
    out = []
    for path in tracked_files(root):
        if path.suffix != ".py" or path == root / SELF:
            continue
        rel = path.relative_to(root)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except SyntaxError as exc:
            out.append(f"{rel}: {exc}")
            continue
        pkg = package_of(path, root) if path.is_relative_to(plan.engine) else None
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = resolve(pkg, node.level, node.module) if node.level and pkg else node.module or ""
                names = [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in plan.renames]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            out += [f"{rel}:{node.lineno}: {name} is not a module" for name in names if name.startswith("engine.") and name not in plan.modules]
    return out


def stale_mentions(root: Path, plan: Plan) -> list[str]:
    """`storage.py` alone, after storage.py became engine/storage/database.py: a human decides."""
    moves = plan.moves + plan.done
    renamed = {m.old.rpartition(".")[2] for m in moves if m.old.rpartition(".")[2] != m.new.rpartition(".")[2]}
    watch = sorted(renamed - {m.new.rpartition(".")[2] for m in moves})
    if not watch:
        return []
    rx = re.compile(r"(?<![\w/.])(" + "|".join(map(re.escape, watch)) + r")\.py\b")
    out = []
    for path in tracked_files(root):
        if path == root / SELF or path.suffix not in {".py", ".md", ".js", ".html", ".txt"}:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if rx.search(line):
                out.append(f"{path.relative_to(root)}:{n}: {line.strip()[:110]}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Split engine/ into domain packages: git mv each module, rewrite every reference.")
    ap.add_argument("--dry-run", action="store_true", help="print what would move and change; touch nothing")
    ap.add_argument("--diff", action="store_true", help="print each rewritten file's diff")
    ap.add_argument("--also", action="append", default=[], metavar="MODULE=PACKAGE/NAME", help="place a module the map does not know")
    ap.add_argument("--allow-dirty", action="store_true", help="run on a tree with uncommitted changes")
    args = ap.parse_args(argv)

    root = Path(run(["git", "rev-parse", "--show-toplevel"], Path.cwd()).strip())
    if not (root / "engine" / "__init__.py").exists():
        print("no engine/ package here", file=sys.stderr)
        return 2
    if not args.allow_dirty and run(["git", "status", "--porcelain", "--untracked-files=no"], root).strip():
        print("the tree has uncommitted changes: commit them first (or --allow-dirty)", file=sys.stderr)
        return 2
    plan = Plan(root, args.also, args.dry_run)
    for c in plan.conflicts:
        print(f"conflict: {c}")
    if plan.conflicts and not args.dry_run:
        print("nothing moved: resolve the conflicts first", file=sys.stderr)
        return 1
    plan.scan_modules()

    # every rewrite is computed first, against the tree as it will be: a failure leaves the tree untouched
    rewritten: dict[Path, str] = {}
    changed, notes = [], []
    for path in tracked_files(root):
        if path == root / SELF:
            continue
        rel = path.relative_to(root)
        if path.suffix == ".py":
            f = PyFile(path, plan)
            old, new = f.src, f.rewrite()
            notes += [f"{rel}: {n}" for n in f.notes]
        else:
            try:
                old = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            new = rewrite_text(old, plan)
        if new == old:
            continue
        rewritten[path] = new
        changed.append(plan.after.get(path, path).relative_to(root))
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{rel}", f"b/{rel}"))

    print(f"moves: {len(plan.moves)} to do, {len(plan.done)} already done")
    plan.apply_moves()
    if not args.dry_run:
        for path, new in rewritten.items():
            plan.after.get(path, path).write_text(new, encoding="utf-8")

    print(f"rewritten: {len(changed)} files")
    for rel in changed:
        print(f"  {rel}")
    print("left in place:")
    for name in plan.staying:
        print(f"  engine/{name}: {KEPT.get(Path(name).stem, 'not in the map (place it with --also MODULE=PACKAGE/NAME)')}")
    for d in plan.unknown_dirs:
        print(f"  engine/{d}/: a package the map does not know (its imports are rewritten)")
    for a in plan.absent:
        print(f"  missing: {a}")
    if not args.dry_run:
        for s in stale_mentions(root, plan):
            print(f"check by hand (a renamed file named without its folder): {s}")
    for n in notes:
        print(f"note: {n}")
    broken = [] if args.dry_run else unresolved(root, plan)
    for b in broken:
        print(f"unresolved import: {b}")
    if not plan.moves and not changed:
        print("nothing to do")
    elif not args.dry_run:
        print("next: python -m pyflakes engine app.py pages components tests bench tools; run the tests; git add -A; git commit")
    return 1 if plan.conflicts or broken else 0


if __name__ == "__main__":
    sys.exit(main())
