"""Task- and feature-specific ML beyond tabular classification and regression (one module each)."""
