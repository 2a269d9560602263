"""`truss_chains`, for chain files written for Truss: kingpost's Chains SDK under truss's name.

Everything here is `kingpost.chains` (the same objects), so `import truss_chains as chains` and
`import kingpost.chains as chains` are interchangeable. Where truss itself is installed too, kingpost's
CLI and runners still give a chain file kingpost's SDK (kingpost.chains.loading.install_alias).
"""

from kingpost.chains import *  # noqa: F403
from kingpost.chains import __all__  # noqa: F401
from kingpost.chains import pydantic_numpy, streaming  # noqa: F401
