"""kingpost router: the data plane."""
