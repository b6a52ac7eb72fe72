"""Measurements of speed and memory, printed as tables; never run by the tests."""
