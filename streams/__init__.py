"""The stream side: Faust app, agents, InfluxDB sink, notifier, settings, CLI."""
