"""Faust agents. The logic they run lives in plain classes (testable without Faust)."""
