"""Runs (layer: runs): legs of a session on one audio clock, recorded into an event log."""
