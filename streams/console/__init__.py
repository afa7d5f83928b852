"""The ward console: what a nurse sees, live, in a browser (docs/console.md)."""
