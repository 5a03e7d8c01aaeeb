"""Save and load an MLP as JSON: its architecture and parameters, checked against a schema.

NaN and infinities are written explicitly, as the strings "NaN", "Infinity" and "-Infinity".
An activation that a plugin provides is saved with the name of the plugin's distribution, so
that loading the file where that plugin is not installed says which one to install. Saving is
atomic: the file is written beside its target (through a symlink, beside the file it points to)
and then renamed over it. An overwritten file keeps its mode; a new one gets the mode the umask
allows. Temporaries left by a save that was killed are removed by the next save to the same
target.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import re
import reprlib
import secrets
import stat
import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, PositiveInt, ValidationError

from mingrad_core import origin_of

from .module import MLP, _activation

FORMAT_VERSION = 1

_QUOTE = 200  # characters of any offending value quoted in an error message
_ERRORS_SHOWN = 5
_STALE_AFTER = 24 * 3600.0  # seconds after which a temporary is stale whoever wrote it
_DISTRIBUTION = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$"  # a distribution's name
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = _QUOTE
_repr.maxlist = _repr.maxdict = 8


def _quote(value: object) -> str:
    """``repr(value)``, at most about ``_QUOTE`` characters of it."""
    text = _repr.repr(value)
    return text if len(text) <= _QUOTE else f"{text[:_QUOTE]}..."


class ModelFileError(ValueError):
    """A model file that cannot be loaded; nothing was changed."""


def _parameter(value: object) -> float:
    """A parameter: a number (not a bool), or one of the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ValueError("a number beyond the range of a float") from None
    if type(value) is str and value in _SPECIAL:
        return _SPECIAL[value]
    raise ValueError('expected a number, or one of "NaN", "Infinity", "-Infinity"')


Parameter = Annotated[float, PlainValidator(_parameter)]


class Architecture(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["MLP"] = "MLP"
    nin: PositiveInt
    nouts: list[PositiveInt] = Field(min_length=1)
    activation: str | None  # None (null in the file): every layer linear
    # the distribution of the plugin that registered the activation; absent for a built-in one
    plugin: str | None = Field(default=None, pattern=_DISTRIBUTION)

    def shape(self) -> tuple[int, list[int], str | None]:
        """What a model must match to take these parameters (the plugin is where it came from)."""
        return self.nin, self.nouts, self.activation

    def parameter_count(self) -> int:
        """How many parameters an MLP of this architecture has: (nin + 1) * nout per layer."""
        sizes = [self.nin, *self.nouts]
        return sum((n + 1) * nout for n, nout in zip(sizes, self.nouts))


class SavedModel(BaseModel):
    """The file format: ``{"format": "mingrad-model", "version": 1, ...}``."""

    model_config = ConfigDict(extra="forbid", strict=True, ser_json_inf_nan="strings")
    format: Literal["mingrad-model"] = "mingrad-model"
    version: int
    architecture: Architecture
    parameters: list[Parameter]


def save(model: MLP, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` as JSON, replacing any file there only once fully written."""
    if not isinstance(model, MLP):
        raise TypeError(f"save() writes an MLP; got {type(model).__name__}")
    saved = SavedModel(
        version=FORMAT_VERSION,
        architecture=Architecture(
            nin=model.nin,
            nouts=model.nouts,
            activation=model.activation,
            plugin=_plugin_of(model.activation),
        ),
        parameters=[p.data for p in model.parameters()],
    )
    builtin = {"architecture": {"plugin"}} if saved.architecture.plugin is None else None
    data = saved.model_dump_json(indent=1, exclude=builtin).encode()
    target = Path(os.path.realpath(path))  # through symlinks: the link stays a link
    _remove_stale_temporaries(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except OSError as exc:
        raise _save_error(exc, path, target) from None
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(FileNotFoundError):  # else the umask decided, at creation
                os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise _save_error(exc, path, target) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_directory(target.parent)


def _plugin_of(activation: str | None) -> str | None:
    """The distribution of the plugin that registered ``activation``; None for a built-in op
    (MinGrad's own distribution) or one registered by a script, which no install brings back."""
    origin = origin_of(activation) if activation is not None else None
    if origin is None or origin.distribution in (None, "mingrad"):
        return None
    return origin.distribution


def _save_error(exc: OSError, path: str | os.PathLike, target: Path) -> OSError:
    """``exc`` (about the temporary file) retold about the path given to ``save``."""
    if isinstance(exc, IsADirectoryError) or target.is_dir():
        why = "it is a directory; expected the path of a file, such as model.json inside it"
    elif not target.parent.exists():
        why = f"the directory {str(target.parent)!r} does not exist"
    elif not target.parent.is_dir():
        why = f"{str(target.parent)!r} is not a directory"
    else:
        why = exc.strerror or str(exc)
    error = type(exc)(f"cannot save the model to {os.fspath(path)!r}: {why}")
    error.errno = exc.errno  # as raised, without the temporary's name in the message
    return error


def _temporary_pattern(target: Path) -> re.Pattern[str]:
    """Our temporaries for ``target``: ``.NAME.PID-HEX.tmp``, or ``.NAME.XXXXXXXX.tmp`` as
    earlier releases named them."""
    return re.compile(rf"\.{re.escape(target.name)}\.(?:(\d+)-[0-9a-f]{{8}}|[a-z0-9_]{{8}})\.tmp")


def _remove_stale_temporaries(target: Path) -> None:
    """Remove temporaries for ``target`` whose save can no longer finish (its process is gone)."""
    pattern = _temporary_pattern(target)
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            pid = match.group(1)
            with contextlib.suppress(OSError):
                old = time.time() - entry.stat(follow_symlinks=False).st_mtime > _STALE_AFTER
                if old or pid is None or not _process_alive(int(pid)):
                    os.unlink(entry.path)


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (where that cannot be asked: yes)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but belongs to someone else
        return True
    return True


def _sync_directory(folder: Path) -> None:
    """Make the rename durable; best effort, since not every system can sync a directory."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _describe(exc: ValidationError) -> str:
    """The first few problems of a validation error, each value quoted briefly."""
    problems = []
    for error in exc.errors(include_url=False)[:_ERRORS_SHOWN]:
        where = ".".join(
            _quote(part)[1:-1] if isinstance(part, str) else str(part) for part in error["loc"]
        )
        message = error["msg"].removeprefix("Value error, ")
        problem = f"{where}: {message}" if where else message
        if error["type"] != "json_invalid":
            problem += f" (got {_quote(error['input'])})"
        problems.append(problem)
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _read(path: str | os.PathLike) -> SavedModel:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read model file {str(path)!r}: {exc}") from exc
    try:
        saved = SavedModel.model_validate_json(text)
    except ValidationError as exc:
        raise ModelFileError(
            f"{str(path)!r} is not a valid MinGrad model file: {_describe(exc)}"
        ) from None
    if saved.version != FORMAT_VERSION:
        raise ModelFileError(
            f"{str(path)!r} has format version {saved.version}; this MinGrad reads version "
            f"{FORMAT_VERSION}"
        )
    return saved


def _check(saved: SavedModel, path: str | os.PathLike) -> None:
    """The activation exists and the parameter count fits the architecture: before building."""
    arch = saved.architecture
    try:
        _activation(arch.activation)
    except ValueError as exc:
        if arch.plugin is not None:
            raise ModelFileError(
                f"{str(path)!r} needs the activation {_quote(arch.activation)} from the plugin "
                f"distribution {_quote(arch.plugin)}, which is not installed here (or failed to "
                f"load: `mingrad ops` lists what loaded); install that distribution "
                f"(pip install {arch.plugin}, or from its source)"
            ) from None
        message = str(exc).replace(repr(arch.activation), _quote(arch.activation), 1)
        raise ModelFileError(f"{str(path)!r}: {message}") from None
    expected = arch.parameter_count()
    if len(saved.parameters) != expected:
        raise ModelFileError(
            f"{str(path)!r} holds {len(saved.parameters)} parameters; its architecture "
            f"{_quote(arch.nouts)} needs {expected}"
        )


def load(path: str | os.PathLike) -> MLP:
    """A new MLP with the architecture and parameters saved in ``path``."""
    saved = _read(path)
    _check(saved, path)
    arch = saved.architecture
    model = MLP(arch.nin, arch.nouts, activation=arch.activation)
    for p, value in zip(model.parameters(), saved.parameters):
        p.data = value
    return model


def load_into(model: MLP, path: str | os.PathLike) -> None:
    """Replace ``model``'s parameters with those saved in ``path``; the architectures must match.

    On any error the model is left exactly as it was.
    """
    saved = _read(path)
    arch = saved.architecture
    ours = Architecture(nin=model.nin, nouts=model.nouts, activation=model.activation)
    if arch.shape() != ours.shape():
        raise ModelFileError(
            f"{str(path)!r} holds an MLP(nin={arch.nin}, nouts={_quote(arch.nouts)}, "
            f"activation={_quote(arch.activation)}); the model is MLP(nin={ours.nin}, "
            f"nouts={ours.nouts}, activation={ours.activation!r})"
        )
    _check(saved, path)
    for p, value in zip(model.parameters(), saved.parameters):
        p.data = value
