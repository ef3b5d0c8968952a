"""Does a CSV file have line breaks inside quoted fields? Decided in one vectorized pass over its bytes.

In RFC 4180 a quote inside a quoted field is doubled, so the parity of the quote characters seen since
the start of the file says whether a position is inside quotes. A line feed at an odd parity is a line
break inside a field. Files without one can be read line by line — splittable, in parallel — instead of
with Spark's ``multiLine`` mode, which reads a whole file as one task.
"""

from __future__ import annotations

import numpy as np

_QUOTE = ord('"')
_LINE_FEED = ord("\n")


class QuotedLineBreakScan:
    """Feed the file's bytes in order with ``update``; ``found`` tells the answer so far."""

    def __init__(self) -> None:
        self.inside_quotes = False
        self.found = False

    def update(self, chunk: bytes) -> None:
        if self.found or not chunk:
            return
        data = np.frombuffer(chunk, dtype=np.uint8)
        # Running parity of quotes (uint8 wraps at 256, which keeps the parity).
        parity = np.cumsum(data == _QUOTE, dtype=np.uint8) & 1
        if self.inside_quotes:
            parity ^= 1
        if np.any(parity[data == _LINE_FEED]):
            self.found = True
        self.inside_quotes = bool(parity[-1])
