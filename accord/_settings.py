"""Scikit-learn's settings habits (``get_params`` / ``set_params`` / ``clone``), written once for the rater models
(dataclasses: :class:`accord.models.base.RaterModel`) and the baselines (plain classes). A light module: the
baselines import it without torch."""

from __future__ import annotations

import inspect
from typing import Any

from accord.datasets.errors import AccordError


class Settings:
    """``set_params`` and ``clone`` over the settings that a subclass's ``get_params`` names."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    def set_params(self, **params: Any) -> Any:
        known = self.get_params()
        for name, value in params.items():
            if name not in known:
                raise AccordError(f"{type(self).__name__} has no setting '{name}'")
            setattr(self, name, value)
        return self

    def clone(self, **overrides: Any) -> Any:
        """An unfitted copy with the same settings (and ``overrides``)."""
        return type(self)(**{**self.get_params(), **overrides})


class ConstructorSettings(Settings):
    """Settings read from the constructor's arguments (each stored under its own name), as the rater models have
    them: the registry's methods answer alike, and ``sklearn.base.clone`` accepts them."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The settings, by name."""
        # a class without its own constructor has object's (*args, **kwargs), which name no setting
        parameters = inspect.signature(type(self).__init__).parameters.values()
        return {p.name: getattr(self, p.name) for p in parameters
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value!r}" for name, value in self.get_params().items())
        return f"{type(self).__name__}({settings})"
