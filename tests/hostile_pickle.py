"""A pickled object that would run a shell command when unpickled (`touch MARKER`): what a loader of pickle files
(CIFAR's batches) must refuse without running it. Plain Python, imported by tests (tests/ is on the pythonpath)."""

from __future__ import annotations

import os
from pathlib import Path


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
