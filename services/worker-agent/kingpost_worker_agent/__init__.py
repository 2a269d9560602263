"""kingpost worker agent: one per node; runs replicas."""
