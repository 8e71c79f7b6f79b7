"""The registry of downstream tasks: recipes looked up by name or alias.

Recipes are registered by name (:func:`register_recipe`); the modules of
:mod:`codebrain.benchmark.tasks` are imported on first look-up (:func:`get_recipe`,
:func:`list_recipes`), so a new task is a new module there that defines ``RECIPES = (...)``
and nothing else has to change.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from codebrain.benchmark.recipe import TaskRecipe
from codebrain.utils.check import check_type

__all__ = ["register_recipe", "get_recipe", "list_recipes"]


_REGISTRY: dict[str, TaskRecipe] = {}
_ALIASES: dict[str, str] = {}
_LOADED = False


def _normal(name: str) -> str:
    return re.sub(r"[\s\-.]+", "_", name.strip().lower())


def register_recipe(recipe: TaskRecipe, *, replace: bool = False) -> TaskRecipe:
    """Add ``recipe`` to the registry (its name and aliases become look-up keys).

    Parameters
    ----------
    recipe : TaskRecipe
    replace : bool
        Allow replacing a recipe of the same name.

    Returns
    -------
    TaskRecipe
        ``recipe``.
    """
    check_type("register_recipe recipe", recipe, TaskRecipe)
    keys = [recipe.name, *(_normal(a) for a in recipe.aliases)]
    for key in keys:
        owner = _ALIASES.get(key)
        if owner is not None and owner != recipe.name and not replace:
            raise ValueError(f"Task name {key!r} is already used by recipe {owner!r}.")
    if recipe.name in _REGISTRY and not replace and _REGISTRY[recipe.name] is not recipe:
        raise ValueError(f"A recipe named {recipe.name!r} is already registered.")
    _REGISTRY[recipe.name] = recipe
    for key in keys:
        _ALIASES[key] = recipe.name
    return recipe


def _load_tasks() -> None:
    """Import every module of :mod:`codebrain.benchmark.tasks` and register its ``RECIPES``."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import codebrain.benchmark.tasks as tasks

    for info in sorted(pkgutil.iter_modules(tasks.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{tasks.__name__}.{info.name}")
        for recipe in getattr(module, "RECIPES", ()):
            if _REGISTRY.get(recipe.name) is not recipe:
                register_recipe(recipe)


def get_recipe(name: str | TaskRecipe) -> TaskRecipe:
    """The registered recipe called ``name`` (case, ``-`` and spaces ignored; aliases work).

    Raises
    ------
    KeyError
        Unknown name; the message lists the known tasks.
    """
    if isinstance(name, TaskRecipe):
        return name
    _load_tasks()
    key = _ALIASES.get(_normal(str(name)))
    if key is None:
        raise KeyError(
            f"Unknown benchmark task {name!r}; known tasks: {', '.join(sorted(_REGISTRY))}."
        )
    return _REGISTRY[key]


def list_recipes() -> list[TaskRecipe]:
    """All registered recipes, sorted by name."""
    _load_tasks()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
