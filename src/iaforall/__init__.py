"""IAForAll: a libre, private, fair AI server that anyone can run and share."""

__version__ = "0.1.0"
