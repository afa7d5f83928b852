"""One module per `vitalstream` subcommand.

Each module defines ``register(subparsers)`` which adds its parser and sets
``func`` (called with the parsed args, returns an exit code). Modules are
imported lazily by `streams.cli` so `vitalstream news2` does not pay for
importing Faust.
"""
