"""The product: the one `evpark` command that runs the edge, central, the simulator and the demo.

Nothing imports this package but its entry points; it alone may import every part.
"""
