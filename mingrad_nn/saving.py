"""Save and load an MLP as JSON: its architecture and parameters, checked against a schema.

NaN and infinities are written explicitly, as the strings "NaN", "Infinity" and "-Infinity".
Saving is atomic: the file is written beside its target and then renamed over it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from .module import MLP

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be loaded; nothing was changed."""


class Architecture(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["MLP"] = "MLP"
    nin: PositiveInt
    nouts: list[PositiveInt] = Field(min_length=1)
    activation: str


class SavedModel(BaseModel):
    """The file format: ``{"format": "mingrad-model", "version": 1, ...}``."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")
    format: Literal["mingrad-model"] = "mingrad-model"
    version: int
    architecture: Architecture
    parameters: list[float]


def save(model: MLP, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` as JSON, replacing any file there only once fully written."""
    if not isinstance(model, MLP):
        raise TypeError(f"save() writes an MLP; got {type(model).__name__}")
    saved = SavedModel(
        version=FORMAT_VERSION,
        architecture=Architecture(nin=model.nin, nouts=model.nouts, activation=model.activation),
        parameters=[p.data for p in model.parameters()],
    )
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(saved.model_dump_json(indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read(path: str | os.PathLike) -> SavedModel:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read model file {str(path)!r}: {exc}") from exc
    try:
        saved = SavedModel.model_validate_json(text)
    except ValidationError as exc:
        raise ModelFileError(f"{str(path)!r} is not a valid MinGrad model file: {exc}") from None
    if saved.version != FORMAT_VERSION:
        raise ModelFileError(
            f"{str(path)!r} has format version {saved.version}; this MinGrad reads version "
            f"{FORMAT_VERSION}"
        )
    return saved


def _check_count(saved: SavedModel, model: MLP, path) -> None:
    expected = len(model.parameters())
    if len(saved.parameters) != expected:
        raise ModelFileError(
            f"{str(path)!r} holds {len(saved.parameters)} parameters; its architecture "
            f"{saved.architecture.nouts} needs {expected}"
        )


def load(path: str | os.PathLike) -> MLP:
    """A new MLP with the architecture and parameters saved in ``path``."""
    saved = _read(path)
    arch = saved.architecture
    try:
        model = MLP(arch.nin, arch.nouts, activation=arch.activation)
    except ValueError as exc:
        raise ModelFileError(f"{str(path)!r}: {exc}") from None
    _check_count(saved, model, path)
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
    if arch != ours:
        raise ModelFileError(
            f"{str(path)!r} holds an MLP(nin={arch.nin}, nouts={arch.nouts}, activation="
            f"{arch.activation!r}); the model is MLP(nin={ours.nin}, nouts={ours.nouts}, "
            f"activation={ours.activation!r})"
        )
    _check_count(saved, model, path)
    for p, value in zip(model.parameters(), saved.parameters):
        p.data = value
