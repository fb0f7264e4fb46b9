"""novad."""
