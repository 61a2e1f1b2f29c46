"""Provenance: what produced a run (RUN/environment.json) and the check that its weights are still those."""
