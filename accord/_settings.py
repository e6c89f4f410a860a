"""Scikit-learn's settings habits (``get_params`` / ``set_params`` / ``clone``), written once for the rater models
(dataclasses: :class:`accord.models.base.RaterModel`), the step and attribute models and the baselines (plain
classes). A light module: the baselines import it without torch."""

from __future__ import annotations

import inspect
from typing import Any

from accord.datasets.errors import AccordError


class Settings:
    """``set_params`` and ``clone`` over the settings that a subclass's ``get_params`` names."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    def set_params(self, **params: Any) -> Any:
        """Change settings, checked at once as the constructor checks them (a dataclass's ``__post_init__``
        included): a bad value is refused here, naming the setting, not at the next fit, and leaves every setting
        as it was."""
        known = self.get_params()
        for name in params:
            if name not in known:
                raise AccordError(f"{type(self).__name__} has no setting '{name}'")
        # the constructor is the one place the settings are checked (and normalised, e.g. a list to a tuple):
        # building a fresh instance with the new settings runs it before this one changes
        checked = type(self)(**{**known, **params})
        for name in params:
            setattr(self, name, getattr(checked, name))
        return self

    def __repr__(self) -> str:
        # scikit-learn's habit (print_changed_only): the settings that differ from the constructor's defaults, as
        # the constructor takes them, so that the text reads back to a model with the same settings; one form for
        # the rater, step and attribute models and the baselines (a dataclass subclass is made with repr=False so
        # that its own does not stand in for this)
        params = self.get_params()
        try:
            defaults = type(self)().get_params()
        except TypeError:  # a setting without a default: every setting is shown
            defaults = {}
        settings = ", ".join(f"{name}={value!r}" for name, value in params.items()
                             if name not in defaults or repr(defaults[name]) != repr(value))
        return f"{type(self).__name__}({settings})"

    def clone(self, **overrides: Any) -> Any:
        """An unfitted copy with the same settings (and ``overrides``, named and checked as by ``set_params``)."""
        return type(self)(**self.get_params()).set_params(**overrides)


class ConstructorSettings(Settings):
    """Settings read from the constructor's arguments (each stored under its own name), as the rater models have
    them: the registry's methods answer alike, and ``sklearn.base.clone`` accepts them."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The settings, by name."""
        # a class without its own constructor has object's (*args, **kwargs), which name no setting
        parameters = inspect.signature(type(self).__init__).parameters.values()
        return {p.name: getattr(self, p.name) for p in parameters
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
