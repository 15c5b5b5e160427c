"""The ceremony file: strict YAML reading, pydantic models, hierarchy rules, JSON Schema."""
from .ceremony import Ceremony, HsmSpec, KeyAlgorithm, PinSource, RootSpec, SigningAlgorithm, SubordinateSpec
from .loader import LoadedCeremony, load_ceremony

__all__ = ["Ceremony", "HsmSpec", "KeyAlgorithm", "LoadedCeremony", "PinSource", "RootSpec",
           "SigningAlgorithm", "SubordinateSpec", "load_ceremony"]
