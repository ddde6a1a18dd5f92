"""Reliability drills: the real engine under crashes and outages, checked against what was sent."""
