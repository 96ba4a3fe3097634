"""One shape for every stage: a validated ``<Stage>Config`` in, a ``<Stage>Result`` out.

* :class:`StageConfig` — the base of every stage's configuration dataclass: defaults live in
  the dataclass fields (one place), :meth:`~StageConfig.validate` names the bad field, the
  config round-trips through JSON (:meth:`~StageConfig.to_dict` /
  :meth:`~StageConfig.from_dict`), and the CLI flags are derived from the fields
  (:meth:`~StageConfig.add_arguments` / :meth:`~StageConfig.from_args`).  argparse is built
  from the fields here rather than with ``simple-parsing``/``tyro``: the CLIs already are
  argparse sub-commands with hand-written help, a field's ``metadata`` carries that help, and
  one small function keeps the dependency list (and the GPU machine's install) short.
* :class:`StageResult` — the base of every stage's result: ``metrics``, ``config``,
  ``environment``, ``save(run)`` and ``load(run)``; its record (``RECORD``) is written last
  through :func:`kgwb.atomic.write_json`, the one JSON writer.
* :class:`Registry` — the one registry style for named components (data formats, recommender
  models, KGE models, extractors, stages), with lazy ``"module:attribute"`` entries so that a
  command imports only what it uses.

:class:`kgwb.rundir.RunDir` owns the paths of a run and builds or reuses each stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from kgwb.errors import ConfigError, UnknownNameError
from kgwb.runinfo import environment_info

C = TypeVar("C", bound="StageConfig")
R = TypeVar("R", bound="StageResult")


def option(default: Any = dataclasses.MISSING, help: str = "", **metadata: Any) -> Any:  # noqa: A002
    """A config field with its CLI help (and optional ``flag=``, ``choices=``, ``metavar=``,
    ``required=True`` for a flag the command needs although the field may be None, ``cli=False``).

    A mutable default (list, dict) is copied per instance."""
    meta = {"help": help, **metadata}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _jsonable(value: Any) -> Any:
    if isinstance(value, StageConfig):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _base_types(annotation: Any) -> tuple[Any, bool]:
    """``(type, optional)`` of a field annotation: ``int | None`` → ``(int, True)``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        return (args[0] if len(args) == 1 else args), optional
    return annotation, False


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """``value`` (from JSON or a CLI string) as the field's type, or a ConfigError naming it."""
    kind, optional = _base_types(annotation)
    if value is None:
        if optional or kind is Any:
            return None
        raise ConfigError(f"{where}: may not be null")
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes", "on"):
                    return True
                if value.lower() in ("false", "0", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind in (int, float, str):
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return kind(value)
        if kind is Path:
            return Path(value)
        if origin in (tuple, list):
            (inner, *rest) = typing.get_args(kind) or (Any,)
            items = value.split(",") if isinstance(value, str) else list(value)
            out = [_coerce(v, inner, where) for v in items if v != ""]
            return tuple(out) if origin is tuple else out
        if isinstance(kind, type) and issubclass(kind, StageConfig) and isinstance(value, dict):
            return kind.from_dict(value, where=where)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"{where}: {value!r} is not a valid {getattr(kind, '__name__', kind)}"
        ) from err
    return value


class StageConfig:
    """Mixin of every stage's ``@dataclass`` config (subclasses are dataclasses)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~kgwb.errors.ConfigError` naming the first bad field (override)."""

    # -- JSON round trip -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], *, where: str | None = None) -> C:
        """The config from a JSON object / params mapping; unknown keys are an error that lists
        the known ones (a typo never silently falls back to a default)."""
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_json(cls: type[C], path: str | Path) -> C:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}:{err.lineno}:{err.colno}: {err.msg}") from err
        return cls.from_dict(data, where=str(path))

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    # -- CLI derived from the fields -------------------------------------------------------
    @classmethod
    def cli_fields(cls, skip: Iterable[str] = ()) -> Iterator[dataclasses.Field]:
        skip = set(skip)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in skip and f.metadata.get("cli", True) and f.init:
                yield f

    @classmethod
    def add_arguments(
        cls,
        parser: argparse.ArgumentParser,
        *,
        skip: Iterable[str] = (),
        helps: dict[str, str] | None = None,
        **defaults: Any,
    ) -> None:
        """One ``--flag`` per field (``--batch-size`` for ``batch_size``; ``metadata['flag']``
        renames it, and a flag without dashes is a positional argument), typed from the
        annotation, with the field's default and help; ``defaults`` overrides a default and
        ``helps`` a help text for this command only."""
        hints = typing.get_type_hints(cls)
        for f in cls.cli_fields(skip):
            kind, _ = _base_types(hints[f.name])
            flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
            default = defaults.get(f.name, _field_default(f))
            required = default is dataclasses.MISSING or bool(f.metadata.get("required"))
            kwargs: dict[str, Any] = {"dest": f.name, "default": default}
            shown = "" if required or default in (None, "") else f" (default {_show(default)})"
            text = (helps or {}).get(f.name) or f.metadata.get("help") or ""
            kwargs["help"] = text + shown
            if kind is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                renamed = "flag" in f.metadata and flag.startswith("-")
                kwargs["metavar"] = f.metadata.get("metavar") or (
                    flag.lstrip("-").replace("-", "_").upper() if renamed else None
                )
                if kind in (int, float):  # typed in the namespace too (commands may read it)
                    kwargs["type"] = kind
                if "choices" in f.metadata:
                    kwargs["choices"] = f.metadata["choices"]
                if required:
                    kwargs["required"] = True
                    del kwargs["default"]
            if not flag.startswith("-"):  # positional: argparse names it by its dest
                kwargs.pop("required", None)
                kwargs["metavar"] = kwargs.get("metavar") or (flag if flag != f.name else None)
                flag = kwargs.pop("dest")
            parser.add_argument(flag, **{k: v for k, v in kwargs.items() if v is not None})

    @classmethod
    def from_args(cls: type[C], args: argparse.Namespace, **overrides: Any) -> C:
        """The config from parsed CLI arguments (fields absent from ``args`` keep defaults)."""
        data = {f.name: getattr(args, f.name) for f in cls.cli_fields() if hasattr(args, f.name)}
        data.update(overrides)
        return cls.from_dict(data, where="command line")


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclasses.dataclass(kw_only=True)
class StageResult:
    """Base of every stage's result.  Subclasses are dataclasses that declare ``config`` (their
    :class:`StageConfig`) and set ``STAGE`` and ``RECORD`` (the JSON record's file name)."""

    STAGE: ClassVar[str] = "stage"
    RECORD: ClassVar[str] = "result.json"
    #: the key of ``RECORD`` that holds the stage's config (what ``get_or_build`` compares)
    CONFIG_KEY: ClassVar[str] = "config"

    environment: dict[str, str] = dataclasses.field(default_factory=environment_info)

    @property
    def metrics(self) -> dict[str, Any]:  # pragma: no cover - every stage overrides it
        raise NotImplementedError

    @property
    def versions(self) -> dict[str, str]:
        """The package versions (older name of :attr:`environment`)."""
        return self.environment

    def record(self) -> dict[str, Any]:
        """What :meth:`save` writes into ``RECORD`` (subclasses add their own keys)."""
        config = getattr(self, "config", None)
        return {
            "stage": self.STAGE,
            "config": _jsonable(config),
            "metrics": _jsonable(self.metrics),
            "environment": self.environment,
        }

    def write_files(self, folder: Path) -> None:
        """Write the stage's artifacts into ``folder`` (before the record; override)."""

    def save(self, run: Any) -> Path:
        """Write the artifacts, then the record last, into ``run`` (a folder or a
        :class:`~kgwb.rundir.RunDir`, which knows this stage's folder)."""
        from kgwb.atomic import write_json

        folder = _folder_for(run, self.STAGE)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / self.RECORD).unlink(missing_ok=True)  # never a record describing old files
        self.write_files(folder)
        write_json(folder / self.RECORD, self.record(), default=str)
        return folder

    @classmethod
    def read_record(cls, run: Any) -> dict[str, Any]:
        folder = _folder_for(run, cls.STAGE)
        path = folder / cls.RECORD
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no saved {cls.STAGE} result")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}:{err.lineno}:{err.colno}: {err.msg}") from err

    @classmethod
    def load(cls: type[R], run: Any) -> R:  # pragma: no cover - stages override it
        raise NotImplementedError(f"{cls.__name__}.load")


def _folder_for(run: Any, stage: str) -> Path:
    if hasattr(run, "folder_of"):
        return run.folder_of(stage)
    return Path(run)


def resolve_entry(entry: Any) -> Any:
    """A lazy ``"module:attribute"`` (or ``"module:Class.method"``) entry imported; any other
    entry as it is."""
    if isinstance(entry, str) and ":" in entry:
        module, attribute = entry.split(":", 1)
        entry = importlib.import_module(module)
        for part in attribute.split("."):
            entry = getattr(entry, part)
    return entry


class Registry:
    """Named components of one kind.  An entry is the object itself or a lazy
    ``"module:attribute"`` string imported on first use; unknown names raise
    :class:`~kgwb.errors.UnknownNameError` listing the known ones."""

    def __init__(self, kind: str, entries: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = dict(entries or {})

    def register(self, name: str, entry: Any = None) -> Callable[[Any], Any] | Any:
        """``registry.register("name", obj)``, or as a decorator ``@registry.register("name")``."""
        if entry is not None:
            self._entries[name] = entry
            return entry

        def decorator(obj: Any) -> Any:
            self._entries[name] = obj
            return obj

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self.names())
        entry = self._entries[name] = resolve_entry(self._entries[name])
        return entry

    def raw(self, name: str) -> Any:
        """The entry as registered (a lazy string stays a string: no import)."""
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self.names())
        return self._entries[name]
