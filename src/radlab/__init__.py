"""radlab."""
