"""Source strategies, one module each; see builder/tree/strategy.py for the interface
and the registry that names them by the recipe's `strategy`."""
