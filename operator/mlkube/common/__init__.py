"""Dependency-free helpers every process shares: container paths and RFC 3339 timestamps."""
