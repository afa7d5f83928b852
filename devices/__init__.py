"""The device edge: wire records, decoders, normalization, registry, gateway."""
