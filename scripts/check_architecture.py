#!/usr/bin/env python3
"""Architecture checker for the crate's `src/` tree (Python 3.11, standard library only).

Usage (from the repository root):

    python3 scripts/check_architecture.py [SRC_DIR]          # default SRC_DIR: src
    python3 scripts/check_architecture.py --self-test [SRC_DIR]
    python3 scripts/check_architecture.py --graph [SRC_DIR]   # dump the file import graph

Prints every violation as `path:line: rule: message` and exits 1 if there is any; otherwise
prints `architecture: 0 violations in N files` and exits 0. Rules (names as printed):

  layering   a top-level module references only the modules listed in LAYERS below
  pure-core  src/domain uses no I/O crates / std I/O items and never reads the clock
  sql        SQL only in src/store (AssertSqlSafe only in src/store/sql.rs)
  binds      every statement in src/store binds as many values as its highest $N
  row-decode no panicking row decode (`.get::<T, _>(`, `r.get("x")`, `Row::get(`)
  cycle      no import cycle between files (lib.rs and main.rs excluded)
  size       no file over MAX_FILE_LINES (see SIZE_ALLOWLIST), no fn over MAX_FN_LINES

The source is lexed first: comments (incl. doc comments and the doc tests inside them), string
literals (plain, byte, raw `r#"…"#`) and char literals are blanked out, so nothing inside them
is taken for code; lifetimes (`'a`) are told apart from char literals.
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------------
# Configuration (edit here)
# ---------------------------------------------------------------------------------------------

MAX_FILE_LINES = 1000
MAX_FN_LINES = 150

# Files allowed to exceed MAX_FILE_LINES. Paths as seen from the repository root; one entry a
# line, each with a comment saying why it is allowed to be long.
SIZE_ALLOWLIST = [
    # Phrase tables for reply understanding: flat data (words, phrases, weights), no logic.
    "src/domain/reply/lexicon.rs",
]

TOP_LEVEL = [
    "domain", "config", "clock", "store", "templates", "agenda",
    "provider", "engine", "http", "app", "tools", "cli",
]
_ALL = set(TOP_LEVEL)

# Which other top-level modules each top-level module may reference (itself always allowed).
# lib.rs and main.rs (the crate roots) may reference anything.
LAYERS: dict[str, set[str]] = {
    "domain": set(),
    "config": {"domain"},
    "clock": set(),
    "store": {"domain", "config"},
    "templates": {"domain", "config"},
    "agenda": {"domain", "config", "store", "clock"},
    "provider": {"domain", "config", "store", "clock"},
    "engine": {"domain", "config", "store", "agenda", "provider", "templates", "clock"},
    "http": {"domain", "config", "store", "agenda", "provider", "templates", "clock", "engine"},
    "app": _ALL - {"tools", "cli"},
    "tools": _ALL - {"cli"},
    "cli": set(_ALL),
}

# Rule 5: a path whose first segment names a child module of the current module (Rust 2018
# "uniform paths", e.g. `pub use planner::PlanReport;` in engine/mod.rs) is the same reference as
# `self::planner::PlanReport`, so it is an edge too. Set to False to count only paths that start
# with `crate::`, `super::` or `self::`.
RESOLVE_BARE_CHILD_PATHS = True

# Rule 2: the pure core.
PURE_CORE_MODULE = "domain"
FORBIDDEN_CRATES = {
    "sqlx", "tokio", "reqwest", "axum", "apalis", "apalis_sqlite", "apalis_postgres",
    "apalis_cron", "hyper", "tracing",
}
FORBIDDEN_STD = [
    ("std", "fs"), ("std", "net"), ("std", "process"), ("std", "env"),
    ("std", "time", "SystemTime"), ("std", "time", "Instant"),
]
CLOCK_TYPES = {"Utc", "Local", "SystemTime", "Instant"}  # `X::now` reads the clock

# Rule 3: SQL.
SQL_MODULE = "store"
SQL_HELPER_FILE = "store/sql.rs"  # the one file in store allowed to use AssertSqlSafe
SQLX_QUERY_FNS = {"query", "query_as", "query_scalar", "raw_sql"}
# A string literal is SQL when (after optional whitespace) it starts with an upper-case
# statement keyword. Keywords that need a continuation (SELECT, DELETE, ...) must be followed by
# whitespace so that e.g. an HTTP method name "DELETE" alone is not taken for SQL; PRAGMA,
# ANALYZE and BEGIN are statements on their own.
SQL_STRING_RE = re.compile(
    r"\A\s*(?:"
    r"(?:SELECT|INSERT|UPDATE|DELETE|TRUNCATE|CREATE|ALTER|DROP)\s"
    r"|(?:PRAGMA|ANALYZE|BEGIN)(?![A-Za-z0-9_])"
    r"|WITH\s.*?\b(?:SELECT|INSERT|UPDATE|DELETE)\b"
    r")",
    re.S,
)

# Rule 4: variables whose `.get("…")` is a row decode.
ROW_VARS = {"r", "row", "rec"}

# ---------------------------------------------------------------------------------------------
# Lexing
# ---------------------------------------------------------------------------------------------

_IDENT_CHARS = re.compile(r"[A-Za-z0-9_]")
_RAW_OR_BYTE_PREFIX = re.compile(r'(?:br|cr|r)(#*)"|[bc]"')
_TOKEN_RE = re.compile(r"r#[A-Za-z_]\w*|\$?[A-Za-z_]\w*|::|\S")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def _decode_escapes(s: str) -> str:
    """Good-enough decoding of a plain string literal's escapes (for the SQL keyword test)."""
    s = re.sub(r"\\\n\s*", "", s)  # line continuation
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), s, flags=re.S)


def lex(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Blanks comments and the insides of string/char literals (newlines kept, so offsets and
    line numbers are unchanged). Returns the masked text and the string literals as
    (offset of the opening quote, decoded content)."""
    out = list(text)
    strings: list[tuple[int, str]] = []
    n = len(text)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    i = 0
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif c == "/" and i + 1 < n and text[i + 1] == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            strings.append((i, _decode_escapes(text[i + 1:j])))
            blank(i + 1, j)
            i = j + 1
        elif c == "'":
            if i + 1 < n and text[i + 1] == "\\":  # escaped char literal: '\n', '\'', '\u{..}'
                j = text.find("'", i + 3)
                j = n if j < 0 else j
                blank(i + 1, j)
                i = j + 1
            elif i + 2 < n and text[i + 2] == "'" and text[i + 1] != "\n":  # 'x'
                blank(i + 1, i + 2)
                i += 3
            else:  # lifetime or label: 'a, 'static
                i += 1
        elif _IDENT_CHARS.match(c):
            m = _RAW_OR_BYTE_PREFIX.match(text, i)
            if m and (i == 0 or not _IDENT_CHARS.match(text[i - 1])):
                if m.group(0).endswith('"') and "r" in m.group(0)[:2]:  # raw string
                    close = '"' + (m.group(1) or "")
                    start = m.end()
                    j = text.find(close, start)
                    j = n if j < 0 else j
                    strings.append((m.end() - 1, text[start:j]))
                    blank(i, m.end() - 1)  # prefix r#
                    blank(start, j)
                    blank(j + 1, j + len(close))  # closing hashes
                    i = j + len(close)
                else:  # b"..." / c"...": let the '"' branch take it
                    blank(i, i + 1)
                    i += 1
            else:
                j = i
                while j < n and _IDENT_CHARS.match(text[j]):
                    j += 1
                if j < n and text[j] == "'" and text[i:j] == "b":  # byte char b'x'
                    blank(i, j)
                i = j
        else:
            i += 1
    return "".join(out), strings


@dataclass
class Tok:
    text: str
    off: int
    ident: bool


def tokenize(masked: str) -> list[Tok]:
    toks = []
    for m in _TOKEN_RE.finditer(masked):
        t = m.group(0)
        ident = t[0].isalpha() or t[0] in "_$" or t.startswith("r#")
        if t.startswith("r#"):
            t = t[2:]
        toks.append(Tok(t, m.start(), ident))
    return toks


# ---------------------------------------------------------------------------------------------
# Source model
# ---------------------------------------------------------------------------------------------


@dataclass
class Ref:
    raw: list[tuple[str, int]]  # path segments as written, with offsets
    absolute: list[tuple[str, int]] | None  # resolved from the crate root, if crate-internal
    in_use: bool


@dataclass
class FnItem:
    name: str
    start: int  # offset of `fn`
    end: int  # offset of the closing brace


@dataclass
class SourceFile:
    rel: str  # path relative to the src dir, posix separators
    text: str
    masked: str = ""
    strings: list[tuple[int, str]] = field(default_factory=list)
    toks: list[Tok] = field(default_factory=list)
    line_starts: list[int] = field(default_factory=list)
    modpath: tuple[str, ...] | None = None  # None for binary crate roots (main.rs, bin/)
    refs: list[Ref] = field(default_factory=list)
    fns: list[FnItem] = field(default_factory=list)
    test_regions: list[tuple[int, int]] = field(default_factory=list)
    test_mod_decls: set[str] = field(default_factory=set)
    test_only: bool = False

    def line(self, off: int) -> int:
        return bisect.bisect_right(self.line_starts, off)

    @property
    def top(self) -> str | None:
        return self.modpath[0] if self.modpath else None

    def in_test(self, off: int) -> bool:
        return self.test_only or any(a <= off <= b for a, b in self.test_regions)

    def in_module(self, top: str) -> bool:
        return self.rel == top + ".rs" or self.rel.startswith(top + "/")


@dataclass(frozen=True, order=True)
class Violation:
    path: str  # relative to the src dir
    line: int
    rule: str
    message: str


def module_path_of(rel: str) -> tuple[str, ...] | None:
    parts = rel[:-3].split("/")
    if rel == "main.rs" or parts[0] == "bin":
        return None
    if rel == "lib.rs":
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


class Crate:
    def __init__(self, src: str):
        self.src = src
        self.files: dict[str, SourceFile] = {}
        for root, dirs, names in os.walk(src):
            dirs.sort()
            for name in sorted(names):
                if name.endswith(".rs"):
                    full = os.path.join(root, name)
                    rel = os.path.relpath(full, src).replace(os.sep, "/")
                    with open(full, encoding="utf-8", errors="replace") as fh:
                        self.files[rel] = SourceFile(rel, fh.read())
        self.module_files: dict[tuple[str, ...], str] = {}
        for f in self.files.values():
            f.modpath = module_path_of(f.rel)
            if f.modpath is not None:
                # src/a.rs wins over src/a/mod.rs if (wrongly) both exist
                if f.modpath not in self.module_files or not f.rel.endswith("mod.rs"):
                    self.module_files[f.modpath] = f.rel
        for f in self.files.values():
            self._analyse(f)
        # files declared as `#[cfg(test)] mod x;` (and everything below them) are test-only
        for f in self.files.values():
            for name in f.test_mod_decls:
                if f.modpath is None:
                    continue
                child = f.modpath + (name,)
                for g in self.files.values():
                    if g.modpath is not None and g.modpath[: len(child)] == child:
                        g.test_only = True

    # -- analysis ---------------------------------------------------------------------------

    def _analyse(self, f: SourceFile) -> None:
        f.masked, f.strings = lex(f.text)
        f.toks = tokenize(f.masked)
        f.line_starts = [0] + [m.end() for m in re.finditer("\n", f.text)]
        toks = f.toks
        n = len(toks)
        # brace pairs
        match: dict[int, int] = {}
        stack: list[int] = []
        for k, t in enumerate(toks):
            if t.text == "{":
                stack.append(k)
            elif t.text == "}" and stack:
                match[stack.pop()] = k
        self._test_regions(f, match)

        def tx(k: int) -> str:
            return toks[k].text if 0 <= k < n else ""

        depth = 0
        modstack: list[tuple[str, int]] = []
        k = 0
        while k < n:
            t = toks[k]
            cur = (f.modpath or ()) + tuple(name for name, _ in modstack)
            if t.text == "{":
                depth += 1
            elif t.text == "}":
                depth -= 1
                if modstack and modstack[-1][1] == depth:
                    modstack.pop()
            elif t.ident and t.text == "mod" and toks[k + 1 : k + 2] and toks[k + 1].ident:
                if tx(k + 2) == "{":
                    modstack.append((toks[k + 1].text, depth))
                k += 2
                continue
            elif t.ident and t.text == "use" and tx(k - 1) not in ("::", "+") and tx(k + 1) != "<":
                try:
                    leaves, k2 = self._parse_use_tree(toks, k + 1, [])
                except IndexError:
                    leaves, k2 = [], k + 1
                for leaf in leaves:
                    self._add_ref(f, leaf, cur, in_use=True)
                k = max(k2, k + 1)
                continue
            elif t.ident and t.text == "extern" and tx(k + 1) == "crate" and k + 2 < n:
                f.refs.append(Ref([(toks[k + 2].text, toks[k + 2].off)], None, True))
                k += 3
                continue
            elif t.ident and t.text == "fn" and k + 1 < n and toks[k + 1].ident:
                end = self._fn_end(toks, k + 2, match)
                if end is not None:
                    f.fns.append(FnItem(toks[k + 1].text, t.off, toks[end].off))
            elif t.ident and tx(k + 1) == "::" and k + 2 < n and toks[k + 2].ident:
                prev, prev2 = tx(k - 1), tx(k - 2)
                global_path = prev == "::" and not (
                    (k >= 2 and toks[k - 2].ident) or prev2 in (">", ")")
                )
                if prev != "::" or global_path:
                    segs = [(t.text, t.off)]
                    j = k + 1
                    while tx(j) == "::" and j + 1 < n and toks[j + 1].ident:
                        segs.append((toks[j + 1].text, toks[j + 1].off))
                        j += 2
                    self._add_ref(f, segs, cur, in_use=False, global_path=global_path)
                    k = j
                    continue
            k += 1

    @staticmethod
    def _fn_end(toks: list[Tok], k: int, match: dict[int, int]) -> int | None:
        """Index of the closing brace of the fn whose signature starts at k (None: no body)."""
        depth = 0
        while k < len(toks):
            s = toks[k].text
            if s in "([":
                depth += 1
            elif s in ")]":
                depth -= 1
            elif depth == 0 and s == ";":
                return None
            elif depth == 0 and s == "{":
                return match.get(k)
            k += 1
        return None

    def _parse_use_tree(self, toks, k, prefix):
        """Parses a use tree starting at token k; returns (leaf paths, index after the tree)."""
        leaves = []
        if toks[k].text == "::":
            k += 1
        if toks[k].text == "{":
            k += 1
            while toks[k].text != "}":
                sub, k = self._parse_use_tree(toks, k, prefix)
                leaves += sub
                if toks[k].text == ",":
                    k += 1
                elif toks[k].text != "}":
                    return leaves, k
            return leaves, k + 1
        if toks[k].text == "*":
            return [prefix + [("*", toks[k].off)]], k + 1
        path = list(prefix)
        while toks[k].ident:
            path.append((toks[k].text, toks[k].off))
            k += 1
            if toks[k].text != "::":
                break
            k += 1
            if toks[k].text == "{":
                sub, k = self._parse_use_tree(toks, k, path)
                return leaves + sub, k
            if toks[k].text == "*":
                return leaves + [path + [("*", toks[k].off)]], k + 1
        if toks[k].text == "as" and toks[k].ident:
            k += 2
        if path and len(path) > len(prefix):
            if path[-1][0] == "self":
                path = path[:-1]
            leaves.append(path)
        return leaves, k

    def _add_ref(self, f, segs, cur, in_use, global_path=False):
        segs = [s for s in segs if s[0] != "*"] if segs and segs[-1][0] == "*" else segs
        if not segs:
            return
        absolute = None if global_path or f.modpath is None else self._resolve(segs, cur)
        f.refs.append(Ref(segs, absolute, in_use))

    def _resolve(self, segs, cur):
        head = segs[0][0]
        if head in ("crate", "$crate", "rappel"):
            return list(segs[1:])
        if head in ("self", "super"):
            base = list(cur)
            i = 0
            while i < len(segs) and segs[i][0] in ("self", "super"):
                if segs[i][0] == "super":
                    if not base:
                        return None
                    base.pop()
                i += 1
            anchor = segs[i - 1][1]
            return [(name, anchor) for name in base] + list(segs[i:])
        # a bare path whose first segment is a child module of the current module (2018 paths)
        if RESOLVE_BARE_CHILD_PATHS and tuple(cur) + (head,) in self.module_files:
            return [(name, segs[0][1]) for name in cur] + list(segs)
        return None

    def file_for(self, absolute: list[tuple[str, int]]) -> str:
        names = tuple(name for name, _ in absolute)
        for k in range(len(names), 0, -1):
            if names[:k] in self.module_files:
                return self.module_files[names[:k]]
        return "lib.rs"

    @staticmethod
    def _test_regions(f: SourceFile, match: dict[int, int]) -> None:
        """`#[cfg(test)]` marks the next item as test code: record its extent, and the names
        of test-only modules declared as `#[cfg(test)] mod x;`."""
        toks = f.toks
        pat = ["#", "[", "cfg", "(", "test", ")", "]"]
        for k in range(len(toks) - len(pat)):
            if [toks[k + d].text for d in range(len(pat))] != pat:
                continue
            j = k + len(pat)
            while j < len(toks) and toks[j].text not in ("{", ";"):
                j += 1
            if j >= len(toks):
                continue
            if toks[j].text == ";":
                end = toks[j].off
                if j >= 2 and toks[j - 2].text == "mod":
                    f.test_mod_decls.add(toks[j - 1].text)
            else:
                end = toks[match[j]].off if j in match else len(f.text)
            f.test_regions.append((toks[k].off, end))

    # -- the graph --------------------------------------------------------------------------

    def edges(self) -> dict[str, dict[str, int]]:
        """file -> {referenced file: offset of the first reference}, roots excluded."""
        graph: dict[str, dict[str, int]] = {}
        for f in self.files.values():
            if f.modpath is None or f.rel == "lib.rs":
                continue
            out = graph.setdefault(f.rel, {})
            for r in f.refs:
                if r.absolute is None:
                    continue
                target = self.file_for(r.absolute)
                if target != f.rel and target != "lib.rs":
                    out.setdefault(target, r.raw[0][1])
        return graph


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


def check_layering(crate: Crate, f: SourceFile, out: list[Violation]) -> None:
    if f.modpath is None or f.rel == "lib.rs":
        return
    top = f.top
    if top not in LAYERS:
        out.append(Violation(f.rel, 1, "layering",
                             f"top-level module `{top}` is not in the layering table"))
        return
    seen = set()
    for r in f.refs:
        if not r.absolute:
            continue
        target, off = r.absolute[0]
        if target == top or target not in LAYERS or target in LAYERS[top]:
            continue
        line = f.line(off)
        key = (line, target)
        if key in seen:
            continue
        seen.add(key)
        path = "::".join(name for name, _ in r.raw)
        out.append(Violation(f.rel, line, "layering",
                             f"`{top}` may not reference `{target}` (`{path}`)"))


def check_pure_core(crate: Crate, f: SourceFile, out: list[Violation]) -> None:
    if not f.in_module(PURE_CORE_MODULE):
        return
    for r in f.refs:
        names = tuple(name for name, _ in r.raw)
        if names[0] in FORBIDDEN_CRATES:
            out.append(Violation(f.rel, f.line(r.raw[0][1]), "pure-core",
                                 f"the pure core may not use `{names[0]}` (`{'::'.join(names)}`)"))
            continue
        for item in FORBIDDEN_STD:
            if names[: len(item)] == item:
                out.append(Violation(f.rel, f.line(r.raw[len(item) - 1][1]), "pure-core",
                                     f"the pure core may not use `{'::'.join(item)}`"))
                break
    toks = f.toks
    for k in range(len(toks) - 2):
        t = toks[k]
        if (t.text in CLOCK_TYPES and toks[k + 1].text == "::" and toks[k + 2].text == "now"
                and (k == 0 or toks[k - 1].text != ".") and not f.in_test(t.off)):
            out.append(Violation(f.rel, f.line(t.off), "pure-core",
                                 f"the pure core may not read the clock (`{t.text}::now`); "
                                 f"take `now` as a parameter"))


def check_sql(crate: Crate, f: SourceFile, out: list[Violation]) -> None:
    in_store = f.in_module(SQL_MODULE)
    toks = f.toks
    flagged: set[int] = set()
    if not in_store:
        for r in f.refs:
            names = [name for name, _ in r.raw]
            if len(names) >= 2 and names[0] == "sqlx" and names[1] in SQLX_QUERY_FNS:
                off = r.raw[1][1]
                flagged.add(off)
                out.append(Violation(f.rel, f.line(off), "sql",
                                     f"`sqlx::{names[1]}` outside src/{SQL_MODULE}"))
        for k in range(len(toks) - 2):
            t = toks[k]
            if (t.text == "query_as" and toks[k + 1].text == "::" and toks[k + 2].text == "<"
                    and t.off not in flagged):
                out.append(Violation(f.rel, f.line(t.off), "sql",
                                     f"`query_as::<` outside src/{SQL_MODULE}"))
        for off, content in f.strings:
            if SQL_STRING_RE.match(content):
                snippet = " ".join(content.split())[:40]
                out.append(Violation(f.rel, f.line(off), "sql",
                                     f"SQL string literal outside src/{SQL_MODULE}: \"{snippet}\""))
    if f.rel != SQL_HELPER_FILE:
        where = f"outside src/{SQL_HELPER_FILE}"
        for t in toks:
            if t.text == "AssertSqlSafe":
                out.append(Violation(f.rel, f.line(t.off), "sql", f"`AssertSqlSafe` {where}"))


# Statement methods that run a statement (the end of a bind chain).
_RUNNERS = {"execute", "fetch", "fetch_one", "fetch_optional", "fetch_all", "fetch_many"}
_PLACEHOLDER_RE = re.compile(r"\$(\d+)")


def _placeholders(sql: str) -> int:
    return max((int(m) for m in _PLACEHOLDER_RE.findall(sql)), default=0)


def _close(toks: list[Tok], k: int) -> int:
    """Index of the bracket closing the one opened at k."""
    depth = 0
    for j in range(k, len(toks)):
        if toks[j].text in "([{":
            depth += 1
        elif toks[j].text in ")]}":
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def check_binds(crate: Crate, f: SourceFile, out: list[Violation]) -> None:
    """Every literal statement in store binds as many values as its highest `$N`: SQLite
    ignores extra binds and reads missing ones as NULL, so only this check (and PostgreSQL at
    run time) catches a mismatch. A statement picked from several literals (`let statement =
    match …`) must fit each of them; binds under an `if` count as optional."""
    if not f.in_module(SQL_MODULE) or f.rel == SQL_HELPER_FILE:
        return
    toks = f.toks
    strings = dict(f.strings)
    n = len(toks)
    # bind counts of this file's helper functions (`fn bind_fields(q, …) { q.bind(…)… }`)
    helper_binds = {}
    for fn in f.fns:
        body = [t for t in toks if fn.start <= t.off <= fn.end]
        count = sum(1 for a, b in zip(body, body[1:]) if a.text == "." and b.text == "bind")
        if count and not any(t.text == "sqlx" for t in body):
            helper_binds[fn.name] = count

    def literals_of(name: str, before: int) -> list[str]:
        """The SQL literals a `let name = …;` before token `before` may give."""
        for j in range(before - 1, 1, -1):
            if toks[j].text == name and toks[j - 1].text in ("let", "mut") and toks[j + 1].text == "=":
                end = j
                while end < n and toks[end].text != ";":
                    end = _close(toks, end) + 1 if toks[end].text in "([{" else end + 1
                return [strings[t.off] for t in toks[j:end] if t.off in strings
                        and SQL_STRING_RE.match(strings[t.off])]
        return []

    def macro_text(k: int) -> str:
        """The literals of a `name!(…)` call, and of `name`'s `macro_rules!` if in this file."""
        end = _close(toks, k + 2)
        parts = [strings[t.off] for t in toks[k:end] if t.off in strings]
        for j in range(n - 2):
            if toks[j].text == "macro_rules" and toks[j + 2].text == toks[k].text:
                close = _close(toks, j + 3)
                parts += [strings[t.off] for t in toks[j:close] if t.off in strings]
        return " ".join(parts)

    def passed_to(param: str, at: int) -> list[str]:
        """Literals given for parameter `param` of the fn around offset `at`, at its calls in
        this file (the parameter must be the one of that name in the signature)."""
        fn = next((x for x in f.fns if x.start <= at <= x.end), None)
        if fn is None:
            return []
        sig = [t for t in toks if fn.start <= t.off and t.text != "{"][:64]
        names = [t.text for t in sig if t.ident]
        if param not in names:
            return []
        out_ = []
        for j in range(n - 1):
            if toks[j].text == fn.name and toks[j + 1].text == "(" and toks[j].off != sig[1].off:
                end = _close(toks, j + 1)
                macro = next((i for i in range(j + 2, end) if toks[i].ident
                              and toks[i + 1].text == "!"), None)
                if macro is not None:
                    out_.append(macro_text(macro))
                else:
                    out_ += [strings[t.off] for t in toks[j:end] if t.off in strings
                             and SQL_STRING_RE.match(strings[t.off])]
        return out_

    ran: list[bool] = []

    def chain(k: int) -> tuple[int, int, int]:
        """Counts binds from token k on: (sure, optional, index after the statement); notes in
        `ran` whether the statement ran the query (`.execute(…)`, `.fetch…(…)`)."""
        sure = optional = 0
        while k < n:
            t = toks[k]
            if t.text == "." and k + 1 < n and toks[k + 1].text in _RUNNERS:
                ran.append(True)
            if t.text == ";" or t.text == "}":
                return sure, optional, k
            if t.text == "." and k + 2 < n and toks[k + 1].text == "bind" and toks[k + 2].text == "(":
                sure += 1
                k = _close(toks, k + 2) + 1
                continue
            if t.ident and t.text in helper_binds and k + 1 < n and toks[k + 1].text == "(":
                sure += helper_binds[t.text]
            if t.ident and t.text == "if":
                brace = k
                while brace < n and toks[brace].text != "{":
                    brace += 1
                end = _close(toks, brace)
                optional += sum(1 for j in range(brace, end) if toks[j].text == "."
                                and toks[j + 1].text == "bind")
                k = end + 1
                continue
            k += 1
        return sure, optional, k

    for k in range(n - 4):
        if not (toks[k].text == "sqlx" and toks[k + 1].text == "::"
                and toks[k + 2].text in ("query", "query_as", "query_scalar")):
            continue
        open_ = k + 3
        if toks[open_].text == "::":  # turbofish
            open_ = _close(toks, open_ + 1) + 1
        if toks[open_].text != "(":
            continue
        arg = toks[open_ + 1]
        if arg.off in strings:
            sqls = [strings[arg.off]]
        elif arg.ident and toks[open_ + 2].text == "!":
            sqls = [macro_text(open_ + 1)]
        elif arg.ident:
            sqls = literals_of(arg.text, k) or passed_to(arg.text, toks[k].off)
        else:
            sqls = []
        if not sqls:
            out.append(Violation(f.rel, f.line(toks[k].off), "binds",
                                 "statement text not visible here (a literal, a `let`, a "
                                 "macro or a parameter given literals in this file)"))
            continue
        ran.clear()
        sure, optional, end = chain(_close(toks, open_) + 1)
        # `let q = sqlx::query(…);` (not run yet) then statements that use `q`
        var = toks[k - 2].text if k >= 2 and toks[k - 1].text == "=" else None
        if var and not ran and end < n and toks[end].text == ";":
            # later statements of the block that use `var`; those inside a nested block (an
            # `if`) bind optionally
            j, depth, start = end + 1, 0, end + 1
            while j < n:
                t = toks[j]
                if t.text == "{":
                    depth, start = depth + 1, j + 1
                elif t.text == "}":
                    if depth == 0:
                        break
                    depth, start = depth - 1, j + 1
                elif t.text == ";":
                    start = j + 1
                elif t.text == var:
                    s2, o2, j = chain(start)
                    if depth == 0:
                        sure, optional = sure + s2, optional + o2
                    else:
                        optional += s2 + o2
                    continue
                j += 1
        for sql in sqls:
            wanted = _placeholders(sql)
            if not sure <= wanted <= sure + optional:
                bound = f"{sure}" if not optional else f"{sure} to {sure + optional}"
                snippet = " ".join(sql.split())[:50]
                out.append(Violation(f.rel, f.line(toks[k].off), "binds",
                                     f"statement uses ${wanted} but binds {bound} values: \"{snippet}\""))


def check_row_decode(crate: Crate, f: SourceFile, out: list[Violation]) -> None:
    toks = f.toks
    n = len(toks)
    for k, t in enumerate(toks):
        if t.text != "get":
            continue
        prev = toks[k - 1].text if k else ""
        nxt = toks[k + 1].text if k + 1 < n else ""
        if prev == "." and nxt == "::" and k + 2 < n and toks[k + 2].text == "<":
            # turbofish: is the last top-level generic argument `_`?
            depth, j, last = 0, k + 2, []
            while j < n:
                s = toks[j].text
                if s == "<":
                    depth += 1
                    if depth == 1:
                        last = []
                        j += 1
                        continue
                elif s == ">":
                    depth -= 1
                    if depth == 0:
                        break
                elif s == "," and depth == 1:
                    last = []
                    j += 1
                    continue
                elif s in (";", "{", "}"):
                    break
                last.append(s)
                j += 1
            if depth == 0 and last == ["_"] and j + 1 < n and toks[j + 1].text == "(":
                out.append(Violation(f.rel, f.line(t.off), "row-decode",
                                     "panicking row decode `.get::<T, _>(…)`: use `try_get`"))
        elif (prev == "." and k >= 2 and toks[k - 2].text in ROW_VARS and nxt == "("
              and k + 2 < n and toks[k + 2].text == '"'):
            out.append(Violation(f.rel, f.line(t.off), "row-decode",
                                 f"panicking row decode `{toks[k - 2].text}.get(\"…\")`: "
                                 f"use `try_get`"))
        elif prev == "::" and k >= 2 and toks[k - 2].text == "Row" and nxt in ("(", "::"):
            out.append(Violation(f.rel, f.line(t.off), "row-decode",
                                 "panicking row decode `Row::get(…)`: use `try_get`"))


def check_sizes(crate: Crate, f: SourceFile, out: list[Violation]) -> None:
    nlines = len(f.text.splitlines())
    if nlines > MAX_FILE_LINES and "src/" + f.rel not in SIZE_ALLOWLIST:
        out.append(Violation(f.rel, 1, "size",
                             f"file has {nlines} lines (limit {MAX_FILE_LINES}; "
                             f"split it or add it to SIZE_ALLOWLIST with a reason)"))
    for fn in f.fns:
        a, b = f.line(fn.start), f.line(fn.end)
        if b - a + 1 > MAX_FN_LINES:
            out.append(Violation(f.rel, a, "size",
                                 f"fn `{fn.name}` is {b - a + 1} lines (limit {MAX_FN_LINES})"))


def find_cycles(graph: dict[str, dict[str, int]], limit: int = 1000) -> tuple[list[list[str]], bool]:
    """Every elementary cycle (each once, starting at its smallest file); True if truncated."""
    nodes = sorted(graph)
    index = {v: i for i, v in enumerate(nodes)}
    cycles: list[list[str]] = []
    truncated = False
    for s in nodes:
        si = index[s]
        # DFS over nodes >= s (in order) so that every cycle is found from its smallest node
        stack = [(s, iter(sorted(graph.get(s, {}))))]
        path = [s]
        on_path = {s}
        while stack:
            v, it = stack[-1]
            w = next(it, None)
            if w is None:
                stack.pop()
                on_path.discard(path.pop())
                continue
            if w not in index or index[w] < si:
                continue
            if w == s:
                cycles.append(list(path))
                if len(cycles) >= limit:
                    return cycles, True
            elif w not in on_path:
                path.append(w)
                on_path.add(w)
                stack.append((w, iter(sorted(graph.get(w, {})))))
    return cycles, truncated


def check_cycles(crate: Crate, out: list[Violation]) -> None:
    graph = crate.edges()
    cycles, truncated = find_cycles(graph)
    for cyc in cycles:
        first = crate.files[cyc[0]]
        nxt = cyc[1] if len(cyc) > 1 else cyc[0]
        line = first.line(graph[cyc[0]][nxt])
        chain = " -> ".join("src/" + p for p in cyc + [cyc[0]])
        out.append(Violation(cyc[0], line, "cycle", f"import cycle of {len(cyc)} files: {chain}"))
    if truncated:
        out.append(Violation(cycles[-1][0], 1, "cycle",
                             f"more than {len(cycles)} cycles; listing stopped"))


def check(src: str) -> tuple[list[Violation], Crate]:
    crate = Crate(src)
    out: list[Violation] = []
    for f in crate.files.values():
        check_layering(crate, f, out)
        check_pure_core(crate, f, out)
        check_sql(crate, f, out)
        check_binds(crate, f, out)
        check_row_decode(crate, f, out)
        check_sizes(crate, f, out)
    check_cycles(crate, out)
    return sorted(set(out)), crate


# ---------------------------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------------------------

_LINE_RE = re.compile(r"^(.*?):(\d+): ([a-z-]+): (.*)$")


def _run_cli(src: str) -> tuple[int, Counter]:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), src],
                          capture_output=True, text=True)
    found: Counter = Counter()
    prefix = src.rstrip("/") + "/"
    for line in proc.stdout.splitlines():
        m = _LINE_RE.match(line)
        if m:
            path = m.group(1)
            path = path[len(prefix):] if path.startswith(prefix) else path
            found[(path, int(m.group(2)), m.group(3), m.group(4))] += 1
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr)
    return proc.returncode, found


def _append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n" + text + "\n")


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _appender(rel: str, code: str):
    """An injection that appends `code` to the file `rel` (relative to the copied src dir)."""
    return lambda root: _append(os.path.join(root, rel), code)


def _long_fn(name: str, lines: int) -> str:
    body = [f"    let _v{i} = {i}; // {{ not a brace" for i in range(lines - 4)]
    return "\n".join([f"fn {name}() {{", '    let _s = "}}}"; let _c = \'}\';',
                      '    let _r = r#"} "quoted" }"#;', *body, "}"])


@dataclass
class Injection:
    label: str
    rule: str | None  # None: a decoy that must add no violation at all
    count: int  # expected number of new violations of `rule`
    describe: str
    apply: object  # callable(copy_src) -> None


def _plan(crate: Crate) -> tuple[list[Injection], list[str]]:
    files = crate.files
    skips: list[str] = []
    plan: list[Injection] = []

    def module_files(top: str, pred=lambda f: True) -> list[SourceFile]:
        return [f for rel, f in sorted(files.items())
                if f.modpath and f.top == top and not f.test_only and pred(f)]

    def declaring_file(top: str) -> str | None:
        return crate.module_files.get((top,))

    def lines(f: SourceFile) -> int:
        return len(f.text.splitlines())

    # -- layering: three forms, each from a new file (nothing points at it: no cycle) -------
    pairs = [("agenda", "engine")] + [(a, b) for a in TOP_LEVEL for b in TOP_LEVEL
                                      if a != b and b not in LAYERS[a]]
    pair = next(((a, b) for a, b in pairs
                 if declaring_file(a) and declaring_file(b)), None)
    if pair is None:
        skips.append("layering: no pair of top-level modules with a forbidden reference exists")
    else:
        a, b = pair
        forms = [
            ("use", f"use crate::{b}::ArchcheckInjected;"),
            ("use group", f"use crate::{{{a}::ArchcheckOk, {b}::{{ArchcheckX, ArchcheckY}}}};"),
            ("expression path", f"fn archcheck_probe() {{ let _ = crate::{b}::ArchcheckZ::new(); }}"),
        ]
        for i, (form, code) in enumerate(forms):
            rel = f"{a}/zz_archcheck_layer{i}.rs"

            def apply(root, rel=rel, code=code, a=a, i=i):
                _write(os.path.join(root, rel), "//! injected by --self-test\n" + code + "\n")
                _append(os.path.join(root, declaring_file(a)), f"mod zz_archcheck_layer{i};")

            plan.append(Injection(f"layering ({form})", "layering", 1, f"src/{rel}: {code}", apply))

    # -- pure core ------------------------------------------------------------------------------
    domain = module_files(PURE_CORE_MODULE)
    if not domain:
        skips.append(f"pure-core: no non-test file in src/{PURE_CORE_MODULE}")
    else:
        target = domain[-1]
        for label, code, count in [
            ("clock", "fn archcheck_f() -> i64 { chrono::Utc::now().timestamp() }", 1),
            ("I/O items", "use std::{fs, time::{Duration, Instant}};\nuse tokio::sync::Mutex;", 3),
        ]:
            plan.append(Injection(f"pure-core ({label})", "pure-core", count,
                                  f"src/{target.rel}: {code!r}",
                                  _appender(target.rel, code)))
        code = ("#[cfg(test)]\nmod archcheck_tests {\n    #[test]\n    fn t() { let _ = chrono::Utc::now(); "
                "let _ = std::time::SystemTime::UNIX_EPOCH; }\n}")
        plan.append(Injection("pure-core (clock in a test module is allowed)", "pure-core", 1,
                              f"src/{target.rel}: cfg(test) module reading the clock and naming "
                              f"std::time::SystemTime (only the latter counts)",
                              _appender(target.rel, code)))

    # -- sql ------------------------------------------------------------------------------------
    outside = module_files("engine") or [f for f in files.values() if f.modpath and f.top not in
                                         (SQL_MODULE, PURE_CORE_MODULE) and not f.test_only]
    if not outside:
        skips.append("sql: no file outside src/store and src/domain")
    else:
        target = outside[0]
        code = 'fn archcheck_g() { let _ = sqlx::query("SELECT 1"); }'
        plan.append(Injection("sql (query outside store)", "sql", 2, f"src/{target.rel}: {code}",
                              _appender(target.rel, code)))
        code2 = 'const ARCHCHECK_Q: &str = r#"\n    WITH x AS (SELECT 1)\n    SELECT * FROM x"#;'
        plan.append(Injection("sql (raw string)", "sql", 1, f"src/{target.rel}: {code2!r}",
                              _appender(target.rel, code2)))
    store = module_files(SQL_MODULE, lambda f: f.rel != SQL_HELPER_FILE)
    if not store:
        skips.append(f"sql (AssertSqlSafe) / row-decode: no file in src/{SQL_MODULE} "
                     f"other than {SQL_HELPER_FILE}")
    else:
        target = store[0]
        code = "fn archcheck_h() { let _ = sqlx::AssertSqlSafe(String::new()); }"
        plan.append(Injection("sql (AssertSqlSafe in store)", "sql", 1, f"src/{target.rel}: {code}",
                              _appender(target.rel, code)))
        # -- binds ---------------------------------------------------------------------------
        for label, code, count in [
            ("missing bind", 'fn archcheck_b1(db: &Db) { let _ = sqlx::query("SELECT $1, $2").bind(1).execute(&db.pool); }', 1),
            ("extra bind after a let", 'fn archcheck_b2(db: &Db) { let q = sqlx::query("UPDATE t SET a = $1");\n'
             '    q.bind(1).bind(2).execute(&db.pool); }', 1),
            ("a match arm that does not fit", 'fn archcheck_b3(db: &Db, x: bool) { let statement = match x {\n'
             '    true => "DELETE FROM t WHERE a = $1", false => "DELETE FROM t WHERE a = $1 AND b = $2" };\n'
             '    let _ = sqlx::query(statement).bind(1).execute(&db.pool); }', 1),
            ("text not visible", 'fn archcheck_b4(db: &Db) { let _ = sqlx::query(&make()).execute(&db.pool); }', 1),
            ("a run statement's result is not its query", 'fn archcheck_b6(db: &Db) { let row = sqlx::query("SELECT $1").bind(1)\n'
             '    .fetch_optional(&db.pool);\n    if row.is_none() { let _ = sqlx::query("SELECT $1").bind(2).execute(&db.pool); } }', 0),
            ("fitting optional bind is allowed", 'fn archcheck_b5(db: &Db, x: Option<i64>) { let mut q = sqlx::query(\n'
             '    "DELETE FROM t WHERE a = $1 AND b = $2").bind(1);\n    if let Some(v) = x { q = q.bind(v); }\n'
             '    let _ = q.execute(&db.pool); }', 0),
        ]:
            plan.append(Injection(f"binds ({label})", "binds" if count else None, count, f"src/{target.rel}: {code!r}",
                                  _appender(target.rel, code)))
        # -- row decode ---------------------------------------------------------------------
        for label, code in [
            ("turbofish", 'fn archcheck_r(r: &sqlx::any::AnyRow) -> i64 { r.get::<i64, _>("id") }'),
            ("by name", 'fn archcheck_r2(row: &sqlx::any::AnyRow) -> i64 { row.get("id") }'),
            ("Row::get", 'fn archcheck_r3(x: &sqlx::any::AnyRow) -> i64 { sqlx::Row::get(x, "id") }'),
        ]:
            plan.append(Injection(f"row-decode ({label})", "row-decode", 1,
                                  f"src/{target.rel}: {code}",
                                  _appender(target.rel, code)))

    # -- cycle: two new files in a module folder, one via super::, one via crate:: -----------
    folder = next((top for top in TOP_LEVEL if (crate.module_files.get((top,)) or "").endswith("/mod.rs")),
                  None)
    if folder is None:
        skips.append("cycle: no top-level module folder with a mod.rs")
    else:
        def apply_cycle(root, top=folder):
            _write(os.path.join(root, top, "zz_archcheck_cycle_a.rs"),
                   "use super::zz_archcheck_cycle_b::B;\npub struct A(pub Option<Box<B>>);\n")
            _write(os.path.join(root, top, "zz_archcheck_cycle_b.rs"),
                   f"pub use crate::{top}::zz_archcheck_cycle_a::A;\npub struct B(pub A);\n")
            _append(os.path.join(root, top, "mod.rs"),
                    "mod zz_archcheck_cycle_a;\nmod zz_archcheck_cycle_b;")
        plan.append(Injection("cycle (2 files)", "cycle", 1,
                              f"src/{folder}/zz_archcheck_cycle_a.rs <-> zz_archcheck_cycle_b.rs",
                              apply_cycle))

    # -- sizes ----------------------------------------------------------------------------------
    small = [f for rel, f in sorted(files.items()) if f.modpath is not None
             and lines(f) <= MAX_FILE_LINES - 220 and "src/" + f.rel not in SIZE_ALLOWLIST]
    if not small:
        skips.append("size: no file small enough to take a 200-line function")
    else:
        target = max(small, key=lines)
        code = _long_fn("archcheck_long", 200)
        plan.append(Injection("size (200-line fn)", "size", 1,
                              f"src/{target.rel}: appended a 200-line fn",
                              _appender(target.rel, code)))
        target2 = min(small, key=lines)
        filler = "\n".join(f"// filler {i}" for i in range(MAX_FILE_LINES + 1))
        plan.append(Injection("size (file over limit)", "size", 1,
                              f"src/{target2.rel}: appended {MAX_FILE_LINES + 1} comment lines",
                              _appender(target2.rel, filler)))
        fine = _long_fn("archcheck_ok", MAX_FN_LINES)
        plan.append(Injection("size (150-line fn is allowed)", None, 0,
                              f"src/{target.rel}: appended a {MAX_FN_LINES}-line fn",
                              _appender(target.rel, fine)))

    # -- decoys: look like violations but live in comments, strings, doc tests -------------------
    # (a file of a module that may not reference cli/tools, outside store: any misread would show)
    decoy_home = next((fs[0] for top in ("agenda", "provider", "engine", "http", "domain", "config",
                                         "templates", "clock") if (fs := module_files(top))), None)
    if decoy_home is None:
        skips.append("decoys: no suitable file")
    else:
        decoy = "\n".join([
            "// use crate::cli::Cli; sqlx::query(\"SELECT 1\"); let x = r.get::<i64, _>(\"id\");",
            "/* block { comment /* nested } */ use crate::tools::X; Utc::now() */",
            "/// Doc test:",
            "/// ```",
            "/// use crate::cli::Cli;",
            "/// let n: i64 = row.get(\"n\"); let q = sqlx::query(\"DELETE FROM t\");",
            "/// ```",
            "#[allow(dead_code)]",
            "const ARCHCHECK_D1: &str = r#\"use crate::cli::Cli; { \"quoted\" { sqlx::query\"#;",
            "#[allow(dead_code)]",
            "const ARCHCHECK_D2: &str = \"crate::tools::X \\\" { Row::get( \\\\\";",
            "#[allow(dead_code)]",
            "const ARCHCHECK_D3: [char; 3] = ['{', '\\'', '\"'];",
            "#[allow(dead_code)]",
            "const ARCHCHECK_D4: &str = \"Select the DELETE key\"; // not SQL: lower case / no statement",
            "#[allow(dead_code)]",
            "const ARCHCHECK_D5: &str = \"DELETE\"; // an HTTP method, not a statement",
            "#[allow(dead_code)]",
            "const ARCHCHECK_D6: &str = r#\"a \" crate::cli::Cli { \" b\"#;",
            "#[allow(dead_code)]",
            "const ARCHCHECK_D7: [&str; 2] = [r\"C:\\\", \" crate::tools::X } \"];",
            "#[allow(dead_code)]",
            "fn archcheck_decoy<'a, 'b: 'a>(s: &'a str, _t: &'b str) -> &'a str {",
            "    'outer: loop { let _c = '}'; let _b = b'{'; break 'outer; }",
            "    let _x = r\"}\"; let _y = br##\"}\"#\"##;",
            "    s",
            "}",
        ])
        plan.append(Injection("decoys (comments, strings, doc tests, lifetimes)", None, 0,
                              f"src/{decoy_home.rel}: appended look-alikes in non-code",
                              _appender(decoy_home.rel, decoy)))
    return plan, skips


def self_test(src: str) -> int:
    if not os.path.isdir(src):
        print(f"self-test: {src} is not a directory", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="archcheck-") as tmp:
        base = os.path.join(tmp, "base", "src")
        shutil.copytree(src, base)
        rc, baseline = _run_cli(base)
        total = sum(baseline.values())
        print(f"baseline: {total} violations in the untouched copy (exit {rc})")
        if rc not in (0, 1) or (rc == 1) != (total > 0):
            print("FAIL baseline: unexpected exit status")
            return 1
        _, crate = check(base)
        plan, skips = _plan(crate)
        failed = 0
        for i, inj in enumerate(plan):
            copy = os.path.join(tmp, f"case{i}", "src")
            shutil.copytree(base, copy)  # the frozen copy: the original may be edited meanwhile
            inj.apply(copy)
            rc, found = _run_cli(copy)
            new = found - baseline
            gone = baseline - found
            rules = Counter(key[2] for key in new.elements())
            if inj.rule is None:
                ok = not new and not gone
                expect = "no new violation"
            else:
                ok = (rc == 1 and rules == Counter({inj.rule: inj.count}) and not gone)
                expect = f"{inj.count} new {inj.rule} violation(s)"
            got = ", ".join(f"{n} {r}" for r, n in sorted(rules.items())) or "none"
            print(f"{'PASS' if ok else 'FAIL'} {inj.label}: {inj.describe} -> expected {expect}, "
                  f"got {got} (exit {rc})")
            if not ok:
                failed += 1
                for path, line, rule, msg in sorted(new.elements()):
                    print(f"    new: src/{path}:{line}: {rule}: {msg}")
                for path, line, rule, msg in sorted(gone.elements()):
                    print(f"    lost: src/{path}:{line}: {rule}: {msg}")
        for s in skips:
            print(f"SKIP {s}")
        print(f"self-test: {len(plan) - failed}/{len(plan)} injections caught"
              + (f", {len(skips)} skipped" if skips else ""))
        return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", nargs="?", default="src", help="the crate's src directory (default: src)")
    ap.add_argument("--self-test", action="store_true",
                    help="inject one violation per rule into copies of SRC and check each is caught")
    ap.add_argument("--graph", action="store_true", help="print the file import graph and exit")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test(args.src)
    if not os.path.isdir(args.src):
        print(f"architecture: {args.src} is not a directory", file=sys.stderr)
        return 2
    violations, crate = check(args.src)
    if args.graph:
        for a, targets in sorted(crate.edges().items()):
            for b in sorted(targets):
                print(f"src/{a} -> src/{b}")
        return 0
    for v in violations:
        print(f"{os.path.join(args.src, v.path)}:{v.line}: {v.rule}: {v.message}")
    if violations:
        by_rule = Counter(v.rule for v in violations)
        detail = ", ".join(f"{r} {n}" for r, n in sorted(by_rule.items()))
        print(f"architecture: {len(violations)} violations in {len(crate.files)} files ({detail})",
              file=sys.stderr)
        return 1
    print(f"architecture: 0 violations in {len(crate.files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
