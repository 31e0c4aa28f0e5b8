"""Figures of this area, drawn from tidy DataFrames only (no computation here)."""
from __future__ import annotations
