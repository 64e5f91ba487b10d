"""Small, dependency-free helpers every part of evpark shares (edge, central, simulator).

Nothing here imports another evpark package: it sits below all of them (docs/architecture.md).
"""
