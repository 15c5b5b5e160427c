"""Step plugins by kind: the built-in ones plus any registered by third parties.

Third parties register a `StepPlugin` subclass under the entry-point group
`pki_ceremony.steps` (name = the step kind). Plugins are loaded once, when first asked for.
"""
from __future__ import annotations

from importlib.metadata import entry_points

from pki_ceremony.errors import CeremonyError

from .contract import StepPlugin

ENTRY_POINT_GROUP = "pki_ceremony.steps"


class UnknownStepKind(CeremonyError):
    pass


class Registry:
    def __init__(self) -> None:
        self._plugins: dict[str, StepPlugin] = {}
        self._loaded_entry_points = False

    def register(self, plugin_cls: type[StepPlugin]) -> type[StepPlugin]:
        kind = plugin_cls.kind
        existing = self._plugins.get(kind)
        if existing is not None and type(existing) is not plugin_cls:
            raise CeremonyError(f"two step plugins claim kind '{kind}': "
                                f"{type(existing).__module__} and {plugin_cls.__module__}")
        self._plugins[kind] = plugin_cls()
        return plugin_cls

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            cls = ep.load()
            if ep.name != cls.kind:
                raise CeremonyError(f"entry point '{ep.name}' in {ENTRY_POINT_GROUP} loads kind '{cls.kind}'")
            self.register(cls)

    def get(self, kind: str) -> StepPlugin:
        if kind not in self._plugins:
            self._load_entry_points()
        try:
            return self._plugins[kind]
        except KeyError:
            raise UnknownStepKind(f"no step plugin for kind '{kind}'; known kinds: "
                                  + ", ".join(sorted(self._plugins))) from None

    def kinds(self) -> list[str]:
        return sorted(self._plugins)
