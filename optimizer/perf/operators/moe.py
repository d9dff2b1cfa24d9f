"""Latency of the routed experts of a mixture-of-experts layer.

Measured MoE configurations (weight format, hidden and expert sizes, top-k, expert
count, TP and EP degrees, routing distribution) each get a grid over the number of
tokens, monotone in tokens and linear above the largest measured count.

Shapes nobody measured fall back to a regression on roofline features fitted per weight
format on all measured rows: ``latency = a + b * weight_bytes + c * activation_bytes +
d * flops`` with non-negative coefficients (so it is monotone in every size), where the
weight bytes count only the experts the batch actually touches
(:func:`~optimizer.perf.work.experts_touched`). ``1 / b`` is then an effective
bandwidth and ``1 / d`` an effective FLOP rate of the GPU's MoE kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import nnls

from optimizer.domain.enums import Quantization
from optimizer.errors import InvalidInputError, NotFoundError
from optimizer.perf import work
from optimizer.perf.dtypes import ACTIVATION_BYTES, format_values
from optimizer.perf.grid import GridFamily
from optimizer.perf.kernel_data import MOE_SHAPE_COLUMNS
from optimizer.perf.operators._base import FamilySpec, OperatorModel, check_positive
from optimizer.perf.roofline import GpuFigures, RooflineCalibration, roofline_ms

__all__ = ["MoEModel", "MoERegression"]

_KEYS = MOE_SHAPE_COLUMNS
_SPEC = FamilySpec(
    keys=_KEYS, sizes=("num_tokens",), exponents=(1.0,), monotone=(True,), fill_order=(0,)
)


def _features(
    num_tokens: np.ndarray,
    hidden: np.ndarray,
    inter: np.ndarray,
    topk: np.ndarray,
    num_experts: np.ndarray,
    quantization: np.ndarray,
    tp: np.ndarray,
    ep: np.ndarray,
    gated: np.ndarray,
    balanced: np.ndarray,
) -> np.ndarray:
    """Columns: 1, touched-expert weight bytes, activation bytes, FLOPs (per rank)."""
    total = work.moe_bytes(
        num_tokens, hidden, inter, topk, num_experts, quantization, tp, ep, gated, balanced
    )
    pairs = np.asarray(num_tokens, float) * np.asarray(topk, float) / np.asarray(ep, float)
    act = np.empty(np.shape(quantization))
    for q in set(np.asarray(quantization, dtype=object).reshape(-1).tolist()):
        act[np.asarray(quantization) == q] = ACTIVATION_BYTES[Quantization(q)] + work.OUTPUT_BYTES
    activation = pairs * np.asarray(hidden, float) * act
    flops = work.moe_flops(num_tokens, hidden, inter, topk, tp, ep, gated)
    return np.stack(
        np.broadcast_arrays(np.ones_like(total), total - activation, activation, flops), axis=-1
    )


@dataclass(frozen=True)
class MoERegression:
    """Non-negative linear model of MoE latency on roofline features, per weight format.

    Attributes:
        coefficients: per format, ``(ms, ms per weight byte, ms per activation byte,
            ms per FLOP)``.
    """

    coefficients: dict[str, tuple[float, float, float, float]]

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> MoERegression:
        """Least relative squared error fit, coefficients constrained >= 0 (NNLS)."""
        coefficients: dict[str, tuple[float, float, float, float]] = {}
        for quantization, rows in frame.groupby("quantization"):
            x = _frame_features(rows)
            y = rows["latency_ms"].to_numpy(dtype=float)
            scale = np.maximum(np.abs(x).max(axis=0), 1e-30)
            solution, _ = nnls(x / scale / y[:, None], np.ones(len(y)))
            c0, c1, c2, c3 = (float(c) for c in solution / scale)
            coefficients[str(quantization)] = (c0, c1, c2, c3)
        return cls(coefficients)

    def predict(self, features: np.ndarray, quantization: np.ndarray) -> np.ndarray:
        """Latency (ms) for feature rows; NaN for formats the fit never saw."""
        out = np.full(features.shape[:-1], np.nan)
        for q, coef in self.coefficients.items():
            rows = quantization == q
            out[rows] = features[rows] @ np.asarray(coef)
        return out

    def scaled(self, bandwidth_ratio: float, flops_ratio: dict[str, float]) -> MoERegression:
        """Moved to a GPU with ``bandwidth_ratio`` times the bandwidth and, per format,
        ``flops_ratio`` times the peak FLOP/s (the fixed term is kept)."""
        return MoERegression(
            {
                q: (c0, c1 / bandwidth_ratio, c2 / bandwidth_ratio, c3 / flops_ratio[q])
                for q, (c0, c1, c2, c3) in self.coefficients.items()
            }
        )


def _frame_features(frame: pd.DataFrame) -> np.ndarray:
    return _features(
        frame["num_tokens"].to_numpy(float),
        frame["hidden"].to_numpy(float),
        frame["inter"].to_numpy(float),
        frame["topk"].to_numpy(float),
        frame["num_experts"].to_numpy(float),
        frame["quantization"].to_numpy(object),
        frame["tp"].to_numpy(float),
        frame["ep"].to_numpy(float),
        frame["gated"].to_numpy(bool),
        (frame["distribution"] == "balanced").to_numpy(),
    )


class MoEModel(OperatorModel):
    """Latency of the routed experts of one MoE layer on one rank.

    Example:
        >>> from optimizer.perf.kernel_data import load_kernel_table
        >>> model = MoEModel().fit(load_kernel_table("h100_sxm", "moe", "vllm"))
        >>> t = model.predict(num_tokens=[1, 16, 4096], hidden=4096, inter=1536, topk=8,
        ...                   num_experts=128, quantization="bf16")
        >>> bool(t[0] < t[1] < t[2])
        True

    Attributes:
        regression_: the fallback for unmeasured shapes (:class:`MoERegression`).
    """

    operator = "moe"
    required_columns = (*_KEYS, "num_tokens")

    def __init__(self) -> None:
        super().__init__()
        self.regression_: MoERegression | None = None

    def _family_specs(self) -> dict[str, FamilySpec]:
        return {"moe": _SPEC}

    def _prepare(self, frame: pd.DataFrame) -> None:
        self.regression_ = MoERegression.fit(frame)

    def _family_rows(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        """The measured rows, plus, for configurations whose token sweep stops early, the
        larger token counts of the other sweeps, extrapolated along the regression's shape
        from the last measured point (a straight line in tokens would overshoot where
        the weights, not the tokens, set the time)."""
        assert self.regression_ is not None
        best = frame.groupby([*_KEYS, "num_tokens"], as_index=False, sort=False)["latency_ms"].min()
        last = best.loc[best.groupby(list(_KEYS), sort=False)["num_tokens"].idxmax()]
        tokens = np.sort(best["num_tokens"].unique())
        short = last[last["num_tokens"] < tokens[-1]]
        if short.empty:
            return best
        grid = pd.DataFrame({"target": tokens})
        extra = short.merge(grid, how="cross")
        extra = extra[extra["target"] > extra["num_tokens"]]
        at_last = self._regression_rows(extra)
        extra = extra.assign(num_tokens=extra["target"])
        scale = self._regression_rows(extra) / at_last
        extra = extra.assign(latency_ms=extra["latency_ms"] * np.maximum(scale, 1.0)).drop(
            columns="target"
        )
        return pd.concat([best, extra], ignore_index=True)

    def _regression_rows(self, frame: pd.DataFrame) -> np.ndarray:
        assert self.regression_ is not None
        return self.regression_.predict(
            _frame_features(frame), frame["quantization"].to_numpy(object)
        )

    def _family_work(
        self, name: str, family: GridFamily, figures: GpuFigures, calibration: RooflineCalibration
    ) -> np.ndarray:
        codes, num_tokens = family.mesh()
        keys = pd.DataFrame(list(family.keys), columns=list(_KEYS)).iloc[codes.reshape(-1)]
        q = keys["quantization"].to_numpy(object)
        args = (
            num_tokens.reshape(-1),
            keys["hidden"].to_numpy(float),
            keys["inter"].to_numpy(float),
            keys["topk"].to_numpy(float),
        )
        tp, ep, gated = (
            keys["tp"].to_numpy(float),
            keys["ep"].to_numpy(float),
            keys["gated"].to_numpy(bool),
        )
        balanced = (keys["distribution"] == "balanced").to_numpy()
        flops = work.moe_flops(*args, tp, ep, gated)
        bytes_moved = work.moe_bytes(
            *args, keys["num_experts"].to_numpy(float), q, tp, ep, gated, balanced
        )
        t = roofline_ms(
            flops,
            bytes_moved,
            figures.peak_flops_array(q),
            figures.mem_bw_bytes_s,
            calibration.arrays("moe", q),
        )
        return t.reshape(codes.shape)

    def _transfer_extra(
        self,
        original: OperatorModel,
        source: GpuFigures,
        target: GpuFigures,
        calibration: RooflineCalibration,
    ) -> None:
        assert isinstance(original, MoEModel) and original.regression_ is not None
        flops_ratio = {
            q: target.peak_flops(q) / source.peak_flops(q)
            for q in original.regression_.coefficients
        }
        self.regression_ = original.regression_.scaled(
            target.mem_bw_tb_s / source.mem_bw_tb_s, flops_ratio
        )

    def predict(
        self,
        num_tokens: ArrayLike,
        hidden: ArrayLike,
        inter: ArrayLike,
        topk: ArrayLike,
        num_experts: ArrayLike,
        quantization: Quantization | str | ArrayLike,
        tp: ArrayLike = 1,
        ep: ArrayLike = 1,
        distribution: str | ArrayLike = "balanced",
        gated: ArrayLike = True,
        measured_only: bool = False,
        strict: bool = True,
    ) -> np.ndarray:
        """Latency in milliseconds of the routed experts on one rank.

        Args:
            num_tokens: tokens in the batch (all ranks' tokens before dispatch, as the
                measurements count them).
            hidden: model hidden size.
            inter: expert intermediate size before tensor parallelism.
            topk: experts per token.
            num_experts: routed experts.
            quantization: expert weight format.
            tp: tensor-parallel degree inside each expert.
            ep: expert-parallel degree.
            distribution: routing, ``balanced`` or a measured ``power_law_<a>``.
            gated: SwiGLU-style experts (three matrices); False for two.
            measured_only: return NaN for unmeasured configurations instead of the
                regression.
            strict: raise for a weight format without measurements; else return NaN
                there.

        Returns:
            Float array of the broadcast shape of the arguments.

        Raises:
            InvalidInputError: a size below 1, or topk above num_experts.
            NotFoundError: with ``strict``, a weight format the tables never measured.
        """
        self._check_fitted()
        sizes = {
            "num_tokens": check_positive("num_tokens", num_tokens),
            "hidden": check_positive("hidden", hidden),
            "inter": check_positive("inter", inter),
            "topk": check_positive("topk", topk),
            "num_experts": check_positive("num_experts", num_experts),
            "tp": check_positive("tp", tp),
            "ep": check_positive("ep", ep),
        }
        if (sizes["topk"] > sizes["num_experts"]).any():
            raise InvalidInputError("topk", "must not exceed num_experts")
        q = format_values(quantization)
        dist = np.asarray(distribution, dtype=object)
        gate = np.asarray(gated, dtype=bool)
        shape = np.broadcast_shapes(*(np.shape(a) for a in (*sizes.values(), q, dist, gate)))
        b = {k: np.broadcast_to(v, shape) for k, v in sizes.items()}
        q, dist, gate = (
            np.broadcast_to(q, shape),
            np.broadcast_to(dist, shape),
            np.broadcast_to(gate, shape),
        )
        keys = [
            q,
            b["hidden"].astype(np.int64),
            b["inter"].astype(np.int64),
            b["topk"].astype(np.int64),
        ]
        keys += [
            b["num_experts"].astype(np.int64),
            b["tp"].astype(np.int64),
            b["ep"].astype(np.int64),
            dist,
            gate,
        ]
        out = self._lookup("moe", keys, [b["num_tokens"]], strict=False)
        rest = np.isnan(out)
        if rest.any() and not measured_only:
            assert self.regression_ is not None
            unknown = set(q[rest].tolist()) - set(self.regression_.coefficients)
            if unknown and strict:
                raise NotFoundError(
                    "measured MoE format", sorted(unknown)[0], self.regression_.coefficients
                )
            rest &= np.isin(q, list(self.regression_.coefficients))
            x = _features(
                b["num_tokens"][rest],
                b["hidden"][rest],
                b["inter"][rest],
                b["topk"][rest],
                b["num_experts"][rest],
                q[rest],
                b["tp"][rest],
                b["ep"][rest],
                gate[rest],
                dist[rest] == "balanced",
            )
            out[rest] = self.regression_.predict(x, q[rest])
        return out

    def covers_configuration(
        self,
        hidden: ArrayLike,
        inter: ArrayLike,
        topk: ArrayLike,
        num_experts: ArrayLike,
        quantization: Quantization | str | ArrayLike,
        tp: ArrayLike = 1,
        ep: ArrayLike = 1,
        distribution: str | ArrayLike = "balanced",
        gated: ArrayLike = True,
    ) -> np.ndarray:
        """Whether each configuration was measured (else :meth:`predict` uses the regression)."""
        ints = [np.asarray(a).astype(np.int64) for a in (hidden, inter, topk, num_experts, tp, ep)]
        return self.covers(
            "moe", format_values(quantization), *ints[:4], *ints[4:], distribution, gated
        )
