"""The backends that turn a .dsc into .debs, and the checks on what they made
(lintian, forbidden linkage)."""
