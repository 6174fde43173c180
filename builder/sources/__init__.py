"""The base archive through the signed chain; our quilt series."""
