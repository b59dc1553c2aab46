"""Real models on real data: one engine for the whole test session."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.face import FaceConfig, FaceEngine
from backend.face.dataset import read_manifest
from tests.support.facedata import require_facedata


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return require_facedata()


@pytest.fixture(scope="session")
def items(data_dir):
    return read_manifest(data_dir)


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    return FaceEngine(FaceConfig())


@pytest.fixture(scope="session")
def read_bytes(data_dir):
    return lambda rel: (data_dir / rel).read_bytes()


@pytest.fixture(scope="session")
def read_img(data_dir):
    def _read(rel: str) -> np.ndarray:
        img = cv2.imread(str(data_dir / rel))
        assert img is not None, rel
        return img

    return _read
