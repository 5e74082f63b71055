"""Task-specific ML beyond tabular classification and regression (one module per framing)."""
