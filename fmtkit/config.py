"""Settings of ``fmtkit validate``: a config file, then the command line.

Discovery, as ruff does it: from the validated path's folder upward, the first
folder holding ``.fmtkit.toml``, ``fmtkit.toml`` or a ``pyproject.toml`` with a
``[tool.fmtkit]`` table (checked in that order) gives the settings;
``--config FILE`` names the file instead, ``--isolated`` uses none. Command-line
options override the file's keys; ``--select`` replaces the file's selection,
``--extend-select`` and ``--ignore`` adjust it.

Rule selectors are codes or code prefixes (``FMT8`` is every FMT8xx rule,
``FMT`` every rule). Where a select and an ignore selector both match a code,
the longer one wins, and ignore wins a tie.

>>> s = resolve(cli={"ignore": ["FMT8"], "extend_select": ["FMT803"]}, isolated=True)
>>> s.enabled("FMT803"), s.enabled("FMT805"), s.enabled("FMT402")
(True, False, True)
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtkit.errors import FmtkitError
from fmtkit.findings import SEVERITIES, SEVERITY_RANK, Finding

CONFIG_FILES = (".fmtkit.toml", "fmtkit.toml", "pyproject.toml")
DEFAULT_MAX_PER_RULE = 20

# key in the file -> (attribute, what it holds); the attribute's default is Settings'
KEYS = {
    "select": ("select", "rule codes or prefixes to check (default: every rule)"),
    "extend-select": ("extend_select", "codes or prefixes to check besides `select`"),
    "ignore": ("ignore", "codes or prefixes not to report"),
    "per-file-ignores": ("per_file_ignores", "file glob -> codes not to report in matching files"),
    "per-entry-ignores": ("per_entry_ignores", "dataset_info.json entry name -> codes not to report for it"),
    "severity": ("severity", "code or prefix -> error, warning or info"),
    "fail-on": ("fail_on", "lowest severity that fails the run (exit 1)"),
    "stage": ("stage", "LLaMA-Factory stage to check fitness for"),
    "jobs": ("jobs", "worker processes for large JSON Lines files"),
    "baseline": ("baseline", "baseline file of accepted findings (relative to the config file)"),
    "max-per-rule": ("max_per_rule", "findings shown per rule in the human report (0: all)"),
}


@dataclass
class Settings:
    """The resolved settings, and where each came from (``sources``: attribute -> file or "command line")."""

    select: list[str] = field(default_factory=lambda: ["FMT"])
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    per_entry_ignores: dict[str, list[str]] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)
    fail_on: str = "error"
    stage: str | None = None
    jobs: int = 1
    baseline: str | None = None
    max_per_rule: int = DEFAULT_MAX_PER_RULE
    config_file: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)
    _enabled: frozenset[str] = frozenset()

    def enabled(self, code: str) -> bool:
        return code in self._enabled

    def severity_of(self, code: str, default: str) -> str:
        """The severity ``code`` is reported at: the most specific override, else ``default``."""
        best = max((p for p in self.severity if code.startswith(p)), key=len, default=None)
        return self.severity[best] if best is not None else default

    def fails(self, findings: list[Finding]) -> bool:
        """Whether any finding is at or above ``fail_on``."""
        limit = SEVERITY_RANK[self.fail_on]
        return any(SEVERITY_RANK[f.severity] <= limit for f in findings)

    def apply(self, findings: list[Finding], root: str) -> list[Finding]:
        """The findings to report: severities overridden, deselected and ignored rules dropped.

        ``root``: the folder the findings' ``file`` is relative to.
        """
        base = self.config_file.parent if self.config_file is not None else Path.cwd()
        out = []
        for f in findings:
            if not self.enabled(f.code) or f.entry is not None and _matches(f.code, self.per_entry_ignores.get(f.entry, ())):
                continue
            if self.per_file_ignores and f.file and self._file_ignores(f.code, Path(root) / f.file, base):
                continue
            f.severity = self.severity_of(f.code, f.severity)
            out.append(f)
        return out

    def _file_ignores(self, code: str, path: Path, base: Path) -> bool:
        rel = os.path.relpath(path.resolve(), base.resolve()).replace(os.sep, "/")
        for pattern, codes in self.per_file_ignores.items():
            hit = fnmatch.fnmatchcase(rel, pattern) or ("/" not in pattern and fnmatch.fnmatchcase(path.name, pattern))
            if hit and _matches(code, codes):
                return True
        return False

    def describe(self) -> list[tuple[str, Any, str]]:
        """(key, value, source) rows for ``fmtkit config``."""
        rows = [("config file", str(self.config_file) if self.config_file else None, "discovered" if self.config_file else "none found")]
        for key, (attr, _) in KEYS.items():
            rows.append((key, getattr(self, attr), self.sources.get(attr, "default")))
        from fmtkit.rules import load_all

        codes = list(load_all())
        off = [c for c in codes if not self.enabled(c)]
        rows.append(("enabled rules", f"{len(codes) - len(off)} of {len(codes)}", "select, extend-select, ignore"))
        if off:
            rows.append(("disabled rules", off, "select, extend-select, ignore"))
        return rows


def _matches(code: str, selectors) -> bool:
    return any(code.startswith(s) for s in selectors)


def find_config(start: Path) -> Path | None:
    """The config file for ``start`` (a file or folder): the nearest one in its folder or above.

    >>> find_config(Path("/")) is None or find_config(Path("/")).name in CONFIG_FILES
    True
    """
    folder = start.resolve()
    if not folder.is_dir():
        folder = folder.parent
    for d in (folder, *folder.parents):
        for name in CONFIG_FILES:
            p = d / name
            if p.is_file() and (name != "pyproject.toml" or "fmtkit" in _read_toml(p).get("tool", {})):
                return p
    return None


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise FmtkitError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FmtkitError(f"{path}: not valid TOML: {exc}") from None


def read_config(path: Path) -> dict[str, Any]:
    """The fmtkit table of a config file (``[tool.fmtkit]`` of a pyproject.toml), keys checked."""
    doc = _read_toml(path)
    if path.name == "pyproject.toml":
        doc = doc.get("tool", {}).get("fmtkit", {})
        where = f"{path} [tool.fmtkit]"
    else:
        where = str(path)
    for key in doc:
        if key not in KEYS:
            hint = difflib.get_close_matches(key, KEYS, n=1)
            raise FmtkitError(f"{where}: unknown key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else f"; known keys: {', '.join(KEYS)}"))
    return doc


def resolve(cli: dict[str, Any] | None = None, start: Path | None = None, config: Path | None = None, isolated: bool = False) -> Settings:
    """Settings from the config file (``config``, else the one found from ``start``), then ``cli``.

    ``cli`` maps Settings attributes to command-line values; None values are unset.
    """
    settings = Settings()
    levels = []
    if not isolated:
        path = config if config is not None else find_config(start or Path.cwd())
        if path is not None:
            settings.config_file = path
            doc = read_config(path)
            values = {KEYS[k][0]: v for k, v in doc.items()}
            if "baseline" in values and isinstance(values["baseline"], str) and values["baseline"] != "-":
                values["baseline"] = str(path.parent / values["baseline"])
            levels.append(_set(settings, values, str(path)))
    given = {k: v for k, v in (cli or {}).items() if v is not None and v != [] and v != ()}
    levels.append(_set(settings, given, "command line"))
    settings._enabled = _selection(levels)
    return settings


def _set(settings: Settings, values: dict[str, Any], source: str) -> dict[str, Any]:
    """Check ``values`` and set them on ``settings``; return them as set (selectors upper-cased)."""
    from fmtkit.rules.stage import STAGES

    checked = {}
    for attr, value in values.items():
        key = next(k for k, (a, _) in KEYS.items() if a == attr)
        where = f"--{key}" if source == "command line" else f"{source}: {key}"
        if attr in ("select", "extend_select", "ignore"):
            value = check_selectors(_string_list(value, where), where)
        elif attr in ("per_file_ignores", "per_entry_ignores"):
            if not isinstance(value, dict):
                raise FmtkitError(f"{where}: expected a table of name -> list of codes")
            value = {str(k): check_selectors(_string_list(v, f"{where}.{k}"), f"{where}.{k}") for k, v in value.items()}
        elif attr == "severity":
            if not isinstance(value, dict) or any(v not in SEVERITIES for v in value.values()):
                raise FmtkitError(f"{where}: expected a table of code -> {' | '.join(SEVERITIES)}")
            value = dict(zip(check_selectors(list(value), where), value.values(), strict=True))
        elif attr == "fail_on" and value not in SEVERITIES:
            raise FmtkitError(f"{where}: {value!r} is not one of {', '.join(SEVERITIES)}")
        elif attr == "stage" and value not in STAGES:
            raise FmtkitError(f"{where}: unknown stage {value!r}; use one of {', '.join(STAGES)}")
        elif attr in ("jobs", "max_per_rule") and (type(value) is not int or value < (1 if attr == "jobs" else 0)):
            raise FmtkitError(f"{where}: expected an integer of at least {1 if attr == 'jobs' else 0}, got {value!r}")
        elif attr == "baseline" and not isinstance(value, str):
            raise FmtkitError(f"{where}: expected a file name")
        setattr(settings, attr, value)
        settings.sources[attr] = source
        checked[attr] = value
    return checked


def _string_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise FmtkitError(f"{where}: expected a list of rule codes")
    return [part.strip() for v in value for part in v.split(",") if part.strip()]


def check_selectors(selectors: list[str], where: str) -> list[str]:
    """Upper-cased selectors; an unknown one is a usage error with a suggestion.

    >>> check_selectors(["fmt8"], "--select")
    ['FMT8']
    >>> check_selectors(["FMT4022"], "--select")
    Traceback (most recent call last):
    fmtkit.errors.FmtkitError: --select: unknown rule code or prefix 'FMT4022'; did you mean 'FMT402'?
    """
    from fmtkit.rules import load_all

    codes = list(load_all())
    prefixes = {c[:n] for c in codes for n in range(3, len(c) + 1)}
    out = []
    for s in selectors:
        s = s.strip().upper()
        if s not in prefixes:
            hint = difflib.get_close_matches(s, codes, n=1, cutoff=0.6)
            raise FmtkitError(f"{where}: unknown rule code or prefix {s!r}" + (f"; did you mean {hint[0]!r}?" if hint else "; `fmtkit rules` lists them"))
        out.append(s)
    return out


def _selection(levels: list[dict[str, Any]]) -> frozenset[str]:
    """The enabled codes after each level (the config file, then the command line) in turn."""
    from fmtkit.rules import load_all

    enabled = set(load_all())
    for level in levels:
        select, extend, ignore = level.get("select"), level.get("extend_select", []), level.get("ignore", [])
        if select is None and not extend and not ignore:
            continue
        chosen = list(select or []) + list(extend)
        start = set() if select is not None else set(enabled)
        for code in load_all():
            s = max((len(p) for p in chosen if code.startswith(p)), default=0)
            i = max((len(p) for p in ignore if code.startswith(p)), default=0)
            if s > i:
                start.add(code)
            elif i:
                start.discard(code)
        enabled = start
    return frozenset(enabled)
