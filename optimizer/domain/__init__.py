"""Validated value types shared by every layer of epopt."""

from __future__ import annotations

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.enums import Engine, KVCacheDtype, Quantization, ServingMode, SpecMethod
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.domain.prediction import Prediction
from optimizer.domain.profile_run import NATIVE_COLUMNS, TARGET_COLUMNS, ProfileRun
from optimizer.domain.slo import SLO
from optimizer.domain.workload import (
    ArrivalProcess,
    BurstyArrivals,
    ClosedLoop,
    ConstantRate,
    EmpiricalLength,
    FixedLength,
    LengthDistribution,
    LogNormalLength,
    OnOffArrivals,
    PoissonArrivals,
    TenantClass,
    TraceReplay,
    UniformLength,
    Workload,
)

__all__ = [
    "NATIVE_COLUMNS",
    "SLO",
    "TARGET_COLUMNS",
    "ArrivalProcess",
    "BurstyArrivals",
    "ClosedLoop",
    "ConstantRate",
    "EmpiricalLength",
    "EndpointConfig",
    "Engine",
    "FixedLength",
    "GPUSpec",
    "KVCacheDtype",
    "LengthDistribution",
    "LogNormalLength",
    "ModelSpec",
    "OnOffArrivals",
    "PoissonArrivals",
    "Prediction",
    "ProfileRun",
    "Quantization",
    "ServingMode",
    "SpecMethod",
    "TenantClass",
    "TraceReplay",
    "UniformLength",
    "Workload",
]
