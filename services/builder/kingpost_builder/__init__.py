"""kingpost builder: validates pushed Trusses and produces content-addressed artifacts."""
