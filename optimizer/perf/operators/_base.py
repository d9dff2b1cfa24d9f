"""What every measured-operator model shares: fitting grid families, lookups, transfer."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from optimizer.errors import InvalidInputError, NotFoundError
from optimizer.perf.grid import GridFamily
from optimizer.perf.kernel_data import KernelTable
from optimizer.perf.roofline import GpuFigures, RooflineCalibration

__all__ = ["FamilySpec", "OperatorModel", "as_frame", "check_positive"]


@dataclass(frozen=True)
class FamilySpec:
    """How one family of grids is laid out: its keys and size axes, and their physics.

    Attributes:
        keys: categorical columns, one grid per distinct combination.
        sizes: size columns, the grid axes.
        exponents: per size, how latency scales above the largest measured size.
        monotone: per size, whether latency must not decrease along it.
        fill_order: size positions in the order missing cells are filled along.
    """

    keys: tuple[str, ...]
    sizes: tuple[str, ...]
    exponents: tuple[float, ...]
    monotone: tuple[bool, ...]
    fill_order: tuple[int, ...]

    def fit(self, frame: pd.DataFrame) -> GridFamily:
        return GridFamily.from_frame(
            frame,
            self.keys,
            self.sizes,
            "latency_ms",
            self.exponents,
            self.monotone,
            self.fill_order,
        )


def as_frame(table: KernelTable | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The tidy rows of a table and a one-line description of where they came from."""
    if isinstance(table, KernelTable):
        return table.frame, table.describe()
    if isinstance(table, pd.DataFrame):
        return table, f"DataFrame ({len(table)} rows)"
    raise InvalidInputError(
        "table", f"expected a KernelTable or a DataFrame, got {type(table).__name__}"
    )


def check_positive(name: str, values: ArrayLike, minimum: float = 1.0) -> np.ndarray:
    """Float array of a size argument, all finite and >= ``minimum``, or a clear error."""
    arr = np.asarray(values, dtype=float)
    bad = ~np.isfinite(arr) | (arr < minimum)
    if bad.any():
        example = arr[bad].reshape(-1)[0]
        raise InvalidInputError(name, f"must be >= {minimum:g}, got {example!r}")
    return arr


class OperatorModel(ABC):
    """Latency of one operator, fitted on measured kernel tables (scikit-learn style).

    ``__init__`` takes no data; :meth:`fit` returns ``self`` and sets the attributes
    ending in ``_``; ``predict`` methods are vectorised over numpy-broadcastable arrays.
    """

    operator: ClassVar[str]
    """The tidy table it is fitted on (one of :data:`~optimizer.perf.kernel_data.OPERATORS`)."""
    required_columns: ClassVar[tuple[str, ...]]
    """Tidy columns :meth:`fit` needs."""

    def __init__(self) -> None:
        self.families_: dict[str, GridFamily] = {}
        self.source_: str = ""

    @abstractmethod
    def _family_specs(self) -> dict[str, FamilySpec]:
        """The families to fit, by name."""

    @abstractmethod
    def _family_rows(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        """The tidy rows (with derived columns) that build family ``name``."""

    @abstractmethod
    def _family_work(
        self, name: str, family: GridFamily, figures: GpuFigures, calibration: RooflineCalibration
    ) -> np.ndarray:
        """Roofline latency (ms) at every cell of ``family.mesh()`` on a GPU."""

    def fit(self, table: KernelTable | pd.DataFrame) -> Self:
        """Fit the grids on a tidy measured table.

        Args:
            table: a :class:`~optimizer.perf.kernel_data.KernelTable` or its tidy frame.

        Returns:
            ``self``.

        Raises:
            InvalidInputError: the table lacks a required column or has no usable row.
        """
        frame, source = as_frame(table)
        missing = [c for c in (*self.required_columns, "latency_ms") if c not in frame]
        if missing:
            raise InvalidInputError(
                "table", f"missing columns {missing} for a {self.operator} model"
            )
        self._prepare(frame)
        families: dict[str, GridFamily] = {}
        for name, spec in self._family_specs().items():
            rows = self._family_rows(name, frame)
            if not rows.empty:
                families[name] = spec.fit(rows)
        if not families:
            raise InvalidInputError("table", f"no usable rows to fit a {self.operator} model")
        self.families_ = families
        self.source_ = source
        self._fit_extra(frame)
        return self

    def _prepare(self, frame: pd.DataFrame) -> None:  # noqa: B027 - optional hook
        """Hook for state fitted before the grids (which may use it)."""

    def _fit_extra(self, frame: pd.DataFrame) -> None:  # noqa: B027 - optional hook
        """Hook for state fitted after the grids."""

    def _check_fitted(self) -> None:
        if not self.families_:
            raise InvalidInputError(
                "model", f"{type(self).__name__} is not fitted; call fit() first"
            )

    def _lookup(
        self, family: str, keys: Sequence[ArrayLike], sizes: Sequence[np.ndarray], strict: bool
    ) -> np.ndarray:
        """Evaluate family ``family`` for each query; NaN (or an error) for unknown keys."""
        self._check_fitted()
        shape = np.broadcast_shapes(*(np.shape(a) for a in (*keys, *sizes)))
        grid = self.families_.get(family)
        codes = np.full(shape, -1) if grid is None else np.broadcast_to(grid.codes(*keys), shape)
        out = np.full(shape, np.nan)
        known = codes >= 0
        if strict and not known.all():
            first = tuple(
                np.broadcast_to(np.asarray(k, dtype=object), shape)[~known].reshape(-1)[0]
                for k in keys
            )
            names = grid.keys if grid is not None else ()
            raise NotFoundError(
                f"measured {self.operator} configuration", repr(first), [repr(k) for k in names]
            )
        if known.any():
            assert grid is not None  # known keys exist only in a fitted family
            sized = [np.broadcast_to(s, shape)[known] for s in sizes]
            out[known] = grid(codes[known], *sized)
        return out

    def covers(self, family: str, *keys: ArrayLike) -> np.ndarray:
        """Whether each query's key has measurements in family ``family``."""
        self._check_fitted()
        grid = self.families_.get(family)
        shape = np.broadcast_shapes(*(np.shape(k) for k in keys))
        if grid is None:
            return np.zeros(shape, dtype=bool)
        return grid.codes(*(np.broadcast_to(np.asarray(k, dtype=object), shape) for k in keys)) >= 0

    def transferred(self, source: object, target: object, calibration: RooflineCalibration) -> Self:
        """The model moved to another GPU: every grid cell times the ratio of roofline times.

        ``latency_target = latency_source * roofline_target / roofline_source`` cell by
        cell, with the same efficiencies on both GPUs (so the ratio is the bandwidth
        ratio where the kernel is memory-bound, the FLOPS ratio where it is
        compute-bound, and 1 where the fixed overhead dominates); the grids are then
        made monotone again.

        Args:
            source: the GPU the model was measured on (peak figures).
            target: the GPU to predict.
            calibration: efficiencies fitted on the source GPU.

        Returns:
            A new fitted model; ``self`` is unchanged.
        """
        self._check_fitted()
        src, dst = GpuFigures.of(source), GpuFigures.of(target)
        moved = copy.copy(self)
        moved.families_ = {
            name: family.scaled(
                self._family_work(name, family, dst, calibration)
                / self._family_work(name, family, src, calibration)
            )
            for name, family in self.families_.items()
        }
        moved.source_ = f"{self.source_}, transferred by roofline ratio"
        moved._transfer_extra(self, src, dst, calibration)
        return moved

    def _transfer_extra(  # noqa: B027 - optional hook
        self,
        original: OperatorModel,
        source: GpuFigures,
        target: GpuFigures,
        calibration: RooflineCalibration,
    ) -> None:
        """Hook to move state fitted besides the grids."""
