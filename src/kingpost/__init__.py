"""kingpost: a self-hosted inference platform."""

__version__ = "0.1.0"
