"""Experiment configurations: TOML files, validated with clear messages.

A configuration has six tables (see ``docs/run_folder.md`` for an example)::

    [problem]   type = "mlp", hidden, activation, loss, bias
    [data]      name = "digits" or path = "data.npz", n_samples, targets, scale, subset_seed
    [optimizer] type = "gd" | "ngd" | "sqrtgd", lr, momentum, nesterov, loss_min
    [run]       steps, seed, threads, record_every, diverge_factor, save_iterates_every,
                init_from
    [tracking]  sharpness_every, k, tol
    [output]    dir, checkpoint_every, flush_every, figures

Relative paths (``data.path``, ``run.init_from``, ``output.dir``) are relative to the folder
of the configuration file.
"""

from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

from . import _core
from .optimizers import CONFIG_TYPES, optimizer_names
from .problems.mlp import ACTIVATIONS, LOSSES
from .spectrum.tracker import SharpnessTracker

__all__ = ["Config", "ConfigError", "load_config", "parse_config", "parse_toml_text"]


def _default_of(func, name: str):
    """The default of a library parameter, so the config and the library share one limit."""
    import inspect

    return inspect.signature(func).parameters[name].default


# the tracker's largest k (its ``max_k`` default) and its tolerance range (0, 1)
_TRACKER_MAX_K = _default_of(SharpnessTracker, "max_k")


class ConfigError(ValueError):
    """An invalid experiment configuration; the message names the file, table and key."""


_REQUIRED = object()


@dataclass(frozen=True)
class _Key:
    kind: str  # "int", "float", "bool", "str", "int_list", "path"
    default: object = _REQUIRED
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None  # exclusive
    positive: bool = False  # minimum is exclusive
    infinite: bool = False  # +inf is a value (the library gives it a meaning)
    doc: str = ""


SCHEMA: dict[str, dict[str, _Key]] = {
    "problem": {
        "type": _Key("str", "mlp", choices=("mlp",)),
        "hidden": _Key("int_list", [32, 32], minimum=1, doc="hidden layer widths"),
        "activation": _Key("str", "tanh", choices=ACTIVATIONS),
        "loss": _Key("str", "mse", choices=LOSSES),
        "bias": _Key("bool", True),
    },
    "data": {
        "name": _Key("str", None, choices=("digits",), doc="an embedded data set"),
        "path": _Key("path", None, doc="an .npz file with arrays X (n, d) and Y (n, k) or (n,)"),
        "n_samples": _Key("int", None, minimum=1),
        "targets": _Key("str", None, choices=("onehot", "centered", "labels")),
        "scale": _Key("str", None, choices=("standard", "none")),
        "subset_seed": _Key("int", 0, minimum=0),
    },
    "optimizer": {
        "type": _Key("str", _REQUIRED, choices=CONFIG_TYPES),
        "lr": _Key("float", _REQUIRED, minimum=0.0, positive=True),
        "momentum": _Key("float", 0.0, minimum=0.0, maximum=1.0),
        "nesterov": _Key("bool", False),
        "loss_min": _Key("float", 0.0),
    },
    "run": {
        "steps": _Key("int", _REQUIRED, minimum=1),
        "seed": _Key("int", 0, minimum=0),
        "threads": _Key("int", 0, minimum=0, doc="0: the library default (all cores)"),
        "record_every": _Key("int", 1, minimum=1),
        "diverge_factor": _Key(
            "float",
            _core.RunConfig().diverge_factor,
            minimum=1.0,
            positive=True,
            infinite=True,
            doc="> 1; inf: only a non-finite loss stops the run",
        ),
        "save_iterates_every": _Key("int", 0, minimum=0, doc="0: only the final iterate"),
        "init_from": _Key("path", None, doc="a finished run folder whose final iterate starts"),
    },
    "tracking": {
        "sharpness_every": _Key("int", 10, minimum=0, doc="0: no sharpness tracking"),
        "k": _Key("int", 1, minimum=1, maximum=_TRACKER_MAX_K + 1),
        "tol": _Key("float", 1e-6, minimum=0.0, positive=True, maximum=1.0),
    },
    "output": {
        "dir": _Key("path", None, doc="default: the config file's name without .toml"),
        "checkpoint_every": _Key("int", 1000, minimum=1),
        "flush_every": _Key("int", 100, minimum=1),
        "figures": _Key("bool", True),
    },
}

_REQUIRED_TABLES = ("optimizer", "run")
_OPTIMIZER_ONLY = {
    key: optimizer_names(owner).config
    for key, owner in (("momentum", "GD"), ("nesterov", "GD"), ("loss_min", "SqrtGD"))
}


@dataclass
class Config:
    """A validated configuration: ``values[table][key]`` with every default filled in.

    Paths in ``values`` are absolute :class:`pathlib.Path` objects (or None).
    ``text`` is the TOML text as written by the user (None when built from a dict).
    """

    values: dict
    source: str = "<config>"
    text: str | None = None
    given: dict = field(default_factory=dict)

    def __getitem__(self, table: str) -> dict:
        return self.values[table]

    def with_overrides(self, overrides: dict) -> Config:
        """A new config with ``{"optimizer.lr": 0.1, ...}`` replaced, validated again."""
        given = copy.deepcopy(self.given)
        for dotted, value in overrides.items():
            table, _, key = dotted.partition(".")
            if table not in SCHEMA or key not in SCHEMA[table]:
                raise ConfigError(f"cannot override unknown key {dotted!r}")
            given.setdefault(table, {})[key] = _to_plain(value)
        return parse_config(given, base_dir=None, source=f"{self.source} (with overrides)")

    def to_toml(self) -> str:
        """The configuration as TOML, with every path absolute, so it runs from anywhere."""
        lines = []
        for table in SCHEMA:
            entries = {k: v for k, v in self.given.get(table, {}).items() if v is not None}
            if not entries:
                continue
            lines.append(f"[{table}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in entries.items())
            lines.append("")
        return "\n".join(lines)


def load_config(path) -> Config:
    """Read and validate a TOML configuration file.

    Raises
    ------
    ConfigError
        For a missing or unreadable file, invalid TOML, unknown tables or keys, wrong types,
        out-of-range values, or missing data files.

    Examples
    --------
    >>> import os, tempfile
    >>> from eosfast.config import load_config
    >>> path = os.path.join(tempfile.mkdtemp(), "gd.toml")
    >>> with open(path, "w") as f:
    ...     _ = f.write('[optimizer]\\ntype = "gd"\\nlr = 0.5\\n[run]\\nsteps = 100\\n'
    ...                 '[data]\\nname = "digits"\\n')
    >>> config = load_config(path)
    >>> config["optimizer"]["lr"], config["output"]["dir"].name
    (0.5, 'gd')
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (at byte {exc.start}); save the configuration as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror or exc}") from None
    config = parse_toml_text(text, source=str(path))
    if config.values["output"]["dir"] is None:
        stem_dir = path.resolve().parent / path.stem
        config.values["output"]["dir"] = stem_dir
        config.given.setdefault("output", {})["dir"] = str(stem_dir)
    return config


def parse_toml_text(text: str, source: str = "<config>") -> Config:
    """Validate TOML text; relative paths are relative to the folder of ``source``.

    Examples
    --------
    >>> from eosfast.config import parse_toml_text
    >>> text = ('[optimizer]\\ntype = "gd"\\nlr = 0.5\\n[run]\\nsteps = 100\\n'
    ...         '[data]\\nname = "digits"\\n')
    >>> config = parse_toml_text(text)
    >>> config["run"]["steps"], config["optimizer"]["momentum"]
    (100, 0.0)
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    config = parse_config(raw, base_dir=Path(source).resolve().parent, source=source)
    config.text = text
    return config


def parse_config(raw: dict, base_dir=None, source: str = "<config>") -> Config:
    """Validate a configuration given as nested dicts (the parsed TOML).

    ``base_dir`` resolves relative paths (default: the current directory).

    Examples
    --------
    >>> from eosfast.config import ConfigError, parse_config
    >>> raw = {"optimizer": {"type": "gd", "lr": 0.1}, "run": {"steps": 10},
    ...        "data": {"name": "digits"}}
    >>> parse_config(raw)["optimizer"]["lr"]
    0.1
    >>> parse_config({"optimizer": {"type": "gd", "lr": 0.1}, "data": {"name": "digits"}})
    Traceback (most recent call last):
    ...
    eosfast.config.ConfigError: <config>: missing table [run]
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a configuration is a table of tables")
    _check_names(raw, SCHEMA, source, "")
    for table in _REQUIRED_TABLES:
        if table not in raw:
            raise ConfigError(f"{source}: missing table [{table}]")
    values, given = {}, {}
    for table, keys in SCHEMA.items():
        section = raw.get(table, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: {table} must be a table [{table}], got {_show(section)}")
        _check_names(section, keys, source, table)
        values[table], given[table] = {}, {}
        for key, spec in keys.items():
            where = f"{source}: [{table}] {key}"
            if key in section:
                value = _convert(section[key], spec, where, base)
                given[table][key] = str(value) if isinstance(value, Path) else section[key]
            elif spec.default is _REQUIRED:
                raise ConfigError(f"{source}: [{table}] is missing the required key {key!r}")
            else:
                value = copy.deepcopy(spec.default)
            values[table][key] = value
    _check_combinations(values, source)
    return Config(values=values, source=source, given=given)


def _check_names(section: dict, known: dict, source: str, table: str) -> None:
    where = f"[{table}]" if table else "the top level"
    for name in section:
        if name not in known:
            hint = difflib.get_close_matches(str(name), list(known), n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            allowed = ", ".join(known)
            raise ConfigError(
                f"{source}: unknown key {name!r} in {where}{did_you_mean}; known: {allowed}"
            )


def _convert(value, spec: _Key, where: str, base: Path):
    kind = spec.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {_show(value)}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {_show(value)}")
        _check_range(value, spec, where)
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {_show(value)}")
        value = float(value)
        if not math.isfinite(value) and not (spec.infinite and value == math.inf):
            raise ConfigError(f"{where} must be finite, got {value}")
        _check_range(value, spec, where)
        return value
    if kind == "int_list":
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{where} must be a list of integers, got {_show(value)}")
        for v in value:
            _check_range(v, spec, where)
        return list(value)
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {_show(value)}")
    if kind == "path":
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path).resolve()
    if spec.choices and value not in spec.choices:
        options = ", ".join(repr(c) for c in spec.choices)
        raise ConfigError(f"{where} must be one of {options}, got {value!r}")
    return value


def _check_range(value, spec: _Key, where: str) -> None:
    if spec.minimum is not None:
        if spec.positive and value <= spec.minimum:
            raise ConfigError(f"{where} must be > {spec.minimum:g}, got {value}")
        if value < spec.minimum:
            raise ConfigError(f"{where} must be >= {spec.minimum:g}, got {value}")
    if spec.maximum is not None and value >= spec.maximum:
        raise ConfigError(f"{where} must be < {spec.maximum:g}, got {value}")


def _check_combinations(values: dict, source: str) -> None:
    data, opt, problem = values["data"], values["optimizer"], values["problem"]
    if (data["name"] is None) == (data["path"] is None):
        raise ConfigError(f'{source}: [data] needs exactly one of name = "digits" or path')
    if data["path"] is not None:
        if not data["path"].is_file():
            raise ConfigError(f"{source}: [data] path: file not found: {data['path']}")
        if data["path"].suffix != ".npz":
            raise ConfigError(f"{source}: [data] path must be an .npz file, got {data['path']}")
    if data["scale"] is None:
        data["scale"] = "standard" if data["name"] is not None else "none"
    if data["targets"] is None:
        data["targets"] = "labels" if problem["loss"] == "ce" else "onehot"
    if (problem["loss"] == "ce") != (data["targets"] == "labels"):
        raise ConfigError(
            f'{source}: [data] targets = "labels" goes with [problem] loss = "ce", '
            f"got targets = {data['targets']!r} with loss = {problem['loss']!r}"
        )
    for key, owner in _OPTIMIZER_ONLY.items():
        default = SCHEMA["optimizer"][key].default
        if opt[key] != default and opt["type"] != owner:
            raise ConfigError(
                f"{source}: [optimizer] {key} applies to type = {owner!r} only, not {opt['type']!r}"
            )
    if opt["nesterov"] and opt["momentum"] == 0.0:
        raise ConfigError(
            f"{source}: [optimizer] nesterov = true needs momentum > 0 (e.g. momentum = 0.9)"
        )
    init = values["run"]["init_from"]
    if init is not None and not init.is_dir():
        raise ConfigError(f"{source}: [run] init_from: run folder not found: {init}")


def _show(value) -> str:
    name = {str: "string", bool: "boolean", int: "integer", float: "float", list: "array"}
    return f"{name.get(type(value), type(value).__name__)} {value!r}"


def _to_plain(value):
    """numpy scalars (from sweeps) as Python numbers."""
    if hasattr(value, "item") and not isinstance(value, (list, str)):
        return value.item()
    return value


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
