"""Problem framings beyond tabular classification and regression: one module per task."""
