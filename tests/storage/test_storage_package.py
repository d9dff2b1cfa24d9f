"""The storage package's lazy exports and its import cost."""

from __future__ import annotations

import subprocess
import sys

import optimizer.storage as storage


def test_every_export_has_a_home_module():
    assert set(storage._HOME) == set(storage.__all__)
    for name in storage.__all__:
        assert getattr(storage, name) is not None


def test_schema_commands_do_not_load_pandas():
    code = (
        "import sys; import optimizer.storage.database, optimizer.storage.models; "
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
