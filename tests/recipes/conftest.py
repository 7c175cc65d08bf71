"""Fixtures of the recipe tests; the helpers live in ``recipe_helpers`` (a unique
module name, so test directories can be collected together)."""

from recipe_helpers import spawn  # noqa: F401  (a fixture)
