"""What the job's unit tests share: a loader that loads what it is told to (JobRun's Loader protocol)."""

from __future__ import annotations

from glueline.shared.counts import Counts
from glueline.shared.lifecycle import Outcome


class ScriptedLoader:
    """Loads whatever it is given, except what ``errors`` names (per FileID, or ``"batch"`` for a pass
    of several files that fails as a whole); remembers each batch."""

    def __init__(self, errors=None, during=None):
        self.errors = errors or {}
        self.during = during  # called once, during the first load (e.g. another upload arrives)
        self.batches: list[list[str]] = []

    def load(self, files):
        names = [f.record.file_name for f in files]
        self.batches.append(names)
        if self.during:
            self.during, during = None, self.during
            during()
        if len(files) > 1 and "batch" in self.errors:
            raise RuntimeError(self.errors["batch"])
        return {
            f.record.file_id: RuntimeError(self.errors[f.record.file_name])
            if f.record.file_name in self.errors
            else Outcome(Counts(1, 1, 0, 0, 0, 0))
            for f in files
        }
