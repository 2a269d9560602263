"""kingpost runner: serves one Truss model over gRPC."""
