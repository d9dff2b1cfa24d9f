"""Catalogs: model specs from Hugging Face configs, and the GPU SKUs with their prices."""

from __future__ import annotations

from optimizer.catalog.gpus import get_gpu, load_gpu_catalog, resolve_gpu_id
from optimizer.catalog.models import (
    CatalogEntry,
    bundled_model_ids,
    catalog_report,
    load_model_spec,
    model_spec_from_config,
    resolve_model_id,
)

__all__ = [
    "CatalogEntry",
    "bundled_model_ids",
    "catalog_report",
    "get_gpu",
    "load_gpu_catalog",
    "load_model_spec",
    "model_spec_from_config",
    "resolve_gpu_id",
    "resolve_model_id",
]
