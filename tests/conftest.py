"""Fixtures shared by the tests in this directory (helpers live in ceremony_support.py)."""
import pytest

from ceremony_support import CeremonyDir, make_ceremony_dir


@pytest.fixture
def local_ceremony(tmp_path) -> CeremonyDir:
    return make_ceremony_dir(tmp_path, "local.yaml")
