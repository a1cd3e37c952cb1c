"""digest: TODO docstring."""
