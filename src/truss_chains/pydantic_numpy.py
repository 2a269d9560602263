"""`truss_chains.pydantic_numpy` is `kingpost.chains.pydantic_numpy`."""

from kingpost.chains.pydantic_numpy import NumpyArrayField  # noqa: F401
