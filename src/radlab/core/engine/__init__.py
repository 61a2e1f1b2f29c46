"""Training engine: Lightning trainer factory, safetensors checkpoints, run directories, callbacks."""
