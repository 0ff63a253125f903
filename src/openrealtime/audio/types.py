"""The one array type for audio: mono float32 samples in [-1, 1]."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]

EMPTY: Samples = np.zeros(0, dtype=np.float32)
