"""Actors: thin Dramatiq wrappers that load work, call pipeline stages and send the next actor."""
