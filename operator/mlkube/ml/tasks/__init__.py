"""Problem framings and feature types beyond tabular classification and regression: one module each."""
