"""The pure domain: no I/O. Centroid assignment, per-user profiles, score blending."""
