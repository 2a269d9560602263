"""`python -m kingpost.cli`: how `kingpost up` starts the services."""

from kingpost.cli import main

main()
