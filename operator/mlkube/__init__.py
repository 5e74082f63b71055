"""mlkube: a Kubernetes-native operator for the whole ML lifecycle."""
