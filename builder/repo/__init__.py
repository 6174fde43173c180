"""Publishing, signing, and apt's view of the repository."""
