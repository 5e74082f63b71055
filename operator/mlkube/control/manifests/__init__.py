"""Pure builders of the objects the operator applies: typed spec in, manifest dict out."""
