"""pipeline: TODO docstring."""
