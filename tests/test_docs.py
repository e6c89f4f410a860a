"""What a new user reads first matches the code: every setting of a public estimator and every parameter of a public
function with a ``Parameters`` section is documented there (and nothing documented is missing from the signature),
and every flag that a command line in the README, ARCHITECTURE.md or a notebook names is a flag of that command."""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "notebooks").glob("*.py"))]
PUBLIC_MODULES = ("accord.models", "accord.aggregate", "accord.aggregate.suggest", "accord.datasets", "accord.reward",
                  "accord.reward.ensemble", "accord.metrics")


# -- the Parameters sections ---------------------------------------------------------------------------------------


def parameters_section(doc: str | None) -> tuple[set[str], list[str]]:
    """The names a numpy-style ``Parameters`` section documents (an entry may name several: ``max_steps, tol``), and
    the classes its ``Others:`` line refers to for the rest. The section ends at the first blank line."""
    text = inspect.cleandoc(doc or "")
    match = re.search(r"^Parameters[^\n]*\n-+\n(.*?)(?:\n[ \t]*\n|\Z)", text, re.S | re.M)
    if match is None:
        return set(), []
    names: set[str] = set()
    others: list[str] = []
    in_others = False
    for line in match.group(1).splitlines():
        if not line or line.startswith((" ", "\t")):
            continue  # an entry's description
        entry = [part.strip().strip("`").lstrip("*") for part in line.split(" : ")[0].split(",")]
        if all(re.fullmatch(r"[a-z_]\w*", part) for part in entry):
            names.update(entry)
            in_others = False
        elif line.startswith("Others:") or in_others:  # the Others line (and its continuation lines)
            in_others = True
            others += re.findall(r":class:`~?([\w.]+)`", line)
        else:
            raise AssertionError(f"cannot read the Parameters entry {line!r}")
    return names, others


def _resolve(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def documented_settings(cls: type) -> set[str]:
    """What the docstrings of ``cls``, of its accord bases and of the classes they refer to (``Others:``) document."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("accord"):
            continue
        own, others = parameters_section(klass.__dict__.get("__doc__"))
        names |= own
        for other in others:
            names |= documented_settings(_resolve(other))
    return names


def _public(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [  # a module without __all__: what it defines under a public name
        name for name, obj in vars(module).items() if not name.startswith("_")
        and getattr(obj, "__module__", None) == module_name]
    return [(f"{module_name}.{name}", getattr(module, name)) for name in names]


ESTIMATORS = sorted({name.rsplit(".", 1)[1]: obj for module in PUBLIC_MODULES for name, obj in _public(module)
                     if inspect.isclass(obj) and callable(getattr(obj, "fit", None))}.items(), key=lambda e: e[0])
FUNCTIONS = sorted({obj: name for module in PUBLIC_MODULES for name, obj in _public(module)
                    if inspect.isfunction(obj) and parameters_section(obj.__doc__)[0]}.items(), key=lambda e: e[1])
FUNCTIONS = [(name, obj) for obj, name in FUNCTIONS]


def _signature_names(obj: object) -> set[str]:
    return set(inspect.signature(obj).parameters)  # type: ignore[arg-type]


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=[name for name, _ in ESTIMATORS])
def test_every_setting_of_a_public_estimator_is_documented_and_nothing_else(name, cls):
    settings, documented = _signature_names(cls), documented_settings(cls)
    assert sorted(settings - documented) == [], f"{name}: settings without a word in its docstring"
    assert sorted(documented - settings) == [], f"{name}: documented settings it does not take"


@pytest.mark.parametrize("name, function", FUNCTIONS, ids=[name for name, _ in FUNCTIONS])
def test_a_public_function_documents_exactly_its_parameters(name, function):
    parameters, (documented, _) = _signature_names(function), parameters_section(function.__doc__)
    assert sorted(parameters - documented) == [], f"{name}: parameters its docstring leaves out"
    assert sorted(documented - parameters) == [], f"{name}: documented parameters it does not take"


def test_the_section_reader_sees_a_missing_and_a_stale_setting():
    class Estimator:
        """An estimator.

        Parameters
        ----------
        alpha, beta
            Two settings.
        Others: :class:`~accord.models.base.RaterModel` (its settings
        are documented there).

        Fitted attributes: ``gamma_``.
        """

        def __init__(self, alpha: float = 1.0, delta: float = 0.0) -> None:
            self.alpha, self.delta = alpha, delta

    Estimator.__module__ = "accord.fake"
    assert documented_settings(Estimator) == {"alpha", "beta", "inference", "max_steps", "tol", "num_samples", "seed",
                                              "device", "progress"}
    assert _signature_names(Estimator) - documented_settings(Estimator) == {"delta"}


def test_the_public_estimators_and_functions_are_found():
    names = {name for name, _ in ESTIMATORS}
    assert {"DawidSkene", "VoteFraction", "MajorityVote", "AttributeMean", "FirstErrorModel"} <= names
    assert any(name.endswith(".make_synthetic") for name, _ in FUNCTIONS)


# -- command lines in the documentation ----------------------------------------------------------------------------


def _options(parser: argparse.ArgumentParser, path: list[str]) -> set[str]:
    for word in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return set(parser._option_string_actions)


def command_options() -> dict[str, set[str]]:
    from accord.cli import REWARD_COMMANDS, build_parser
    from accord.reward.__main__ import build_parser as build_reward_parser

    main, reward = build_parser(), build_reward_parser()
    commands = {name: _options(main, [name]) for name in ("demo", "aggregate", "report", "suggest")}
    commands.update({name: _options(reward, [name]) for name in REWARD_COMMANDS})
    commands.update({f"datasets {name}": _options(main, ["datasets", name]) for name in ("list", "describe")})
    return commands


COMMAND = re.compile(r"\baccord (datasets list|datasets describe|[a-z]+)\b(.*)")


def documented_command_lines(text: str) -> list[str]:
    """Every ``accord <command> ...`` in the text: in a code line (continued by a backslash) or an inline span."""
    text = text.replace("\\\n", " ")
    lines = [line for line in text.splitlines() if line.lstrip().startswith(("accord ", "$ accord "))]
    spans = re.findall(r"`([^`\n]*\baccord [a-z][^`\n]*)`", text)
    return [" ".join(line.split()) for line in lines + spans]


def test_the_reader_finds_the_command_lines_of_the_documentation():
    found = documented_command_lines("x `accord aggregate --input a.csv` y\n\n```bash\naccord report --input b \\\n"
                                     "    --methods mace --output-dir r\n```\n")
    assert found == ["accord report --input b --methods mace --output-dir r", "accord aggregate --input a.csv"]


@pytest.mark.parametrize("path", DOCS, ids=[path.name for path in DOCS])
def test_every_flag_a_documented_command_line_names_exists(path):
    commands = command_options()
    wrong = []
    for line in documented_command_lines(path.read_text(encoding="utf-8")):
        match = COMMAND.search(line)
        if match is None or match.group(1) not in commands:
            continue  # prose such as "accord is never below ..."
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", match.group(2)))
        wrong += [f"{match.group(1)} {flag} (in: {line.strip()})" for flag in sorted(flags - commands[match.group(1)])]
    assert not wrong, f"{path.name}: flags the command does not have: {wrong}"


# -- defaults in the command-line help -----------------------------------------------------------------------------


def _states(text: str, default: object) -> bool:
    """Whether a help text states ``default``: "(default: 3e-4)", "(default: 3000; ...)" or "dawid-skene (default)"."""
    stated = re.findall(r"\(default: ([^);]+)", text) + re.findall(r"([\w.-]+) \(default\)", text)
    for value in stated:
        if value == str(default):
            return True
        try:
            if float(value) == float(default):  # type: ignore[arg-type]
                return True
        except (TypeError, ValueError):
            pass
    return False


def _help_options() -> list[tuple[str, argparse.ArgumentParser, argparse.Action]]:
    from accord.cli import build_parser
    from accord.reward.__main__ import build_parser as build_reward_parser

    found = []
    for parser, commands in ((build_parser(), ("demo", "aggregate", "report", "suggest", "datasets list",
                                                "datasets describe")),
                             (build_reward_parser(), ("evaluate", "score", "calibrate", "combine"))):
        for command in commands:
            sub = parser
            for word in command.split():
                sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
            found += [(f"{command} {action.option_strings[0]}", sub, action) for action in sub._actions
                      if action.option_strings and action.help not in (None, argparse.SUPPRESS)
                      and action.dest != "help"]
    return found


def test_every_default_the_command_line_has_is_stated_in_its_help():
    # a flag whose default argparse holds says it, and says the value it is (accord train -h adds its own)
    wrong = []
    for name, parser, action in _help_options():
        if action.default in (None, False) or action.required:
            continue
        text = parser._get_formatter()._expand_help(action)
        if not _states(text, action.default):
            wrong.append(f"{name}: default {action.default!r}, help {text!r}")
    assert not wrong, "\n".join(wrong)


def test_the_default_reader_tells_a_stated_default_from_another():
    assert _states("synthetic pairs (default: 3000)", 3000) and _states("rate (default: 3e-4)", 3e-4)
    assert _states("dawid-skene (default), mace", "dawid-skene")
    assert not _states("pairs per step", 16) and not _states("steps (default: 40)", 32)


# -- the examples in the docstrings --------------------------------------------------------------------------------

EXAMPLE_MODULES = sorted(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                         for path in (ROOT / "accord").rglob("*.py") if ">>> " in path.read_text(encoding="utf-8"))


def test_the_modules_with_examples_are_found():
    assert {"accord.models.dawid_skene", "accord.models.context", "accord.reward"} <= set(EXAMPLE_MODULES)


@pytest.mark.parametrize("name", EXAMPLE_MODULES)
def test_every_docstring_example_runs(name, tmp_path, monkeypatch, one_torch_thread):
    # the module and class examples a new user copies first: the context and rater-types ones used a name their
    # skipped first line defines (NameError), and the context one called mean_clean() for P(A > B) per group
    import doctest

    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0


# -- the README's Python examples ----------------------------------------------------------------------------------

README_PYTHON = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def _sketch_inputs() -> dict[str, object]:
    """What a sketch in the README takes as given (the suggest loop: a table, raters to ask, the judgments that come
    back); the other examples define everything they use."""
    from accord.datasets import make_synthetic

    table = make_synthetic(n_pairs=120, n_annotators=12, seed=0).judgments
    first = table.groupby("pair_id").cumcount() < 3
    judgments = table[first].assign(pool=lambda t: np.where(t["annotator"] < "ann03", "ai", "human"))
    return {"judgments": judgments, "new_judgments": table[~first],
            "available": sorted(judgments["annotator"].unique())[:4]}


def test_the_readme_has_python_examples():
    assert len(README_PYTHON) >= 3 and any("make_synthetic(" in block for block in README_PYTHON)


@pytest.mark.parametrize("index", range(len(README_PYTHON)))
def test_every_python_example_of_the_readme_runs(index, tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.chdir(tmp_path)  # the examples write their files (cleaned.parquet, steps.parquet) here
    exec(compile(README_PYTHON[index], f"README.md python example {index}", "exec"), _sketch_inputs())


def test_the_train_help_names_every_task_and_loss():
    # the task setting's help named 'pairwise' and 'attributes', not 'steps' (accord train --task steps)
    import dataclasses

    from accord.reward.config import RewardConfig
    from accord.reward.losses import LOSSES
    from accord.reward.task import task_names

    helps = {field.name: field.metadata["help"] for field in dataclasses.fields(RewardConfig)}
    assert [name for name in task_names() if f"'{name}'" not in helps["task"]] == []
    assert [name for name in LOSSES if name not in helps["loss"]] == []


def test_the_aggregate_help_names_the_step_methods_and_what_each_table_writes(capsys):
    """Was: `accord aggregate -h` named the pairwise and per-attribute methods but not the step methods (a step
    table's first-error), and said a .csv output gives soft labels, which step and per-attribute tables refuse (their
    cleaned datasets are .parquet or .jsonl). Now the help says both."""
    from accord.aggregate.steps import STEP_METHODS
    from accord.cli import main

    with pytest.raises(SystemExit):
        main(["aggregate", "-h"])
    text = re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))  # argparse wraps after a hyphen
    method = text.split("--method METHOD", 2)[2].split("--debias")[0]
    assert [name for name in STEP_METHODS if name not in method] == []
    output = text.split("--output OUTPUT", 2)[2].split("--pairs-output")[0]
    assert "step" in output and "per-attribute" in output
