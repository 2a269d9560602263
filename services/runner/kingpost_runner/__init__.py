"""kingpost runner: serves one Truss model over gRPC.

It runs inside the model's own environment, where only the packages `kingpost.runner_packages`
declares (REQUIRED, PROVIDED), `kingpost` and this package are there besides the model's own.
"""
