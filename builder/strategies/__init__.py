"""Source strategies, one module each; see builder/strategy.py for the interface
and the registry that names them by the recipe's `strategy`."""
