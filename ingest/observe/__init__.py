"""observe: TODO docstring."""
