"""One module per downstream dataset; each defines ``RECIPES = (TaskRecipe(...), ...)``.

Modules are discovered by :func:`codebrain.benchmark.list_recipes` (no list to edit here):
adding a task is adding a module. Modules whose name starts with ``_`` are helpers.
"""
