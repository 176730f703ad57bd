"""Test configuration: make tests/ importable (helpers, reference) and shared fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
# scikit-learn's check_estimator runs its array-API check (NumPy inputs with dispatch on)
# only when SciPy was imported with this set; set it before anything imports SciPy, so
# that check runs instead of skipping.
os.environ.setdefault("SCIPY_ARRAY_API", "1")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
