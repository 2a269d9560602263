"""kingpost scheduler: owns desired state and places replicas on nodes."""
