"""Pipelines: the stage order of each kind of work, declared once, as plain functions."""
