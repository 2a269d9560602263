"""`truss_chains.streaming` is `kingpost.chains.streaming`."""

from kingpost.chains.streaming import *  # noqa: F403
from kingpost.chains.streaming import stream_reader, stream_types, stream_writer  # noqa: F401
