"""The package version, in a module of its own so that any layer (the code
generator's header, the module cache's tag, the CLI) can read it without
importing the rest of the package."""

__version__ = "0.1.0"
