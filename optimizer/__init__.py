"""epopt: pick the LLM serving configuration that meets a latency SLO at the lowest cost.

The package is organised by concept:

- ``optimizer.domain``   -- validated value types (model spec, GPU, workload, SLO, endpoint config).
- ``optimizer.catalog``  -- model specs from Hugging Face configs, the GPU catalog.
- ``optimizer.space``    -- per-engine search spaces and their feasibility constraints.
- ``optimizer.profiles`` -- measured runs: native schema, importers, the bundled reference runs.
- ``optimizer.storage``  -- SQL storage (SQLite by default, PostgreSQL by URL) and migrations.
- ``optimizer.cli``      -- the ``epopt`` command line.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
