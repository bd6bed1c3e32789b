"""Prior authorization models."""
