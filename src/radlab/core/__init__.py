"""Task-agnostic building blocks: I/O, transforms, models, training engine, inference, metrics."""
